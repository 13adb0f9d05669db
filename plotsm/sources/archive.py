"""Verifying zip archives: the members a product reader will use are read once through :mod:`zipfile`, which checks
each one's CRC-32, before anything is computed or written from them.

GDAL reads zip members through ``/vsizip/`` without checking their CRC, so one flipped byte in a band of a zipped
product becomes wrong pixels (or a half-decoded image) in an output that looks fine. The Sentinel-1/-2 readers
therefore call :func:`verify_zip_members` on exactly the members they will read, before they open them with GDAL.

The check streams each member in chunks of :data:`CHUNK_BYTES` (memory stays bounded whatever the member's size).
It is hand-written rather than ``ZipFile.testzip()`` because ``testzip`` reads every member of the archive (an
L2A zip holds about a hundred: all resolutions, QI data, previews, most of them never read), returns only the
first bad name, and lets ``zlib.error`` and ``EOFError`` of a damaged member escape as they are.

Cost, from the page cache, per 200 MB member on a shared 2-CPU VM [measured]: stored members (as CDSE serves them)
go at CRC-32 speed, 0.4–2.3 GB/s; deflated incompressible data (JP2 codestreams) 0.2–1.2 GB/s; deflated uint16 DNs
(an S1 measurement) 50–120 MB/s, the speed of inflating them.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from plotsm.errors import InputError

PathLike = str | os.PathLike[str]

#: Bytes read from a member at a time (its uncompressed data): bounds the memory of a check.
CHUNK_BYTES = 4 * 2**20

#: What reading a damaged member raises: ``BadZipFile`` (CRC-32 mismatch, damaged local header), ``EOFError``
#: (truncated data), ``zlib.error`` (undecodable deflate stream).
MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)

_FIX = "The product is damaged; re-download it (compare its size or checksum with the catalogue's)."


def verify_zip_members(archive: PathLike, members: Iterable[str]) -> None:
    """Read each named member of ``archive`` to its end, checking its CRC-32; return if all are intact.

    Raises :class:`InputError` naming ``archive!member`` for the first member that is missing, has a CRC-32
    mismatch, is truncated, holds undecodable compressed data, is encrypted or uses a compression method Python
    cannot read; or naming the archive when it is no complete zip (no central directory) or cannot be read.
    """
    path = Path(archive)
    try:
        with zipfile.ZipFile(path) as zf:
            for name in dict.fromkeys(members):
                _verify_member(zf, path, name)
    except zipfile.BadZipFile as exc:  # from ZipFile() only: _verify_member turns member errors into InputError
        raise InputError(f"{path}: not a complete zip archive ({exc}); the download was probably cut short. "
                         f"{_FIX}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the archive ({exc}). Check that the file is readable.") from exc


def _verify_member(zf: zipfile.ZipFile, archive: Path, name: str) -> None:
    label = f"{archive}!{name}"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise InputError(f"{label}: not in the archive. {_FIX}") from None
    if info.flag_bits & 0x1:
        raise InputError(f"{label}: encrypted; plotsm reads unencrypted products. Download the product from the "
                         "catalogue again, or pass its extracted folder.")
    try:
        with zf.open(info) as member:
            while member.read(CHUNK_BYTES):
                pass
    except NotImplementedError as exc:  # e.g. Deflate64 of some Windows zip tools
        raise InputError(f"{label}: compressed with a method Python's zipfile cannot read, so it cannot be "
                         f"checked ({exc}). Extract the product with a tool that supports it and pass the folder, "
                         "or re-download the original zip.") from exc
    except (*MEMBER_ERRORS, OSError) as exc:  # OSError: an unreadable disk sector, a file cut while read
        raise damaged_member(archive, name, exc) from exc


def damaged_member(archive: PathLike, name: str, exc: BaseException) -> InputError:
    """The error for member ``name`` of ``archive`` that failed to read with ``exc`` (one of
    :data:`MEMBER_ERRORS`, or an ``OSError``): it names ``archive!member``, what went wrong and the fix."""
    return InputError(f"{archive}!{name}: {_describe(exc)}. {_FIX}")


def _describe(exc: BaseException) -> str:
    """What went wrong with a member, in words."""
    if isinstance(exc, zipfile.BadZipFile):
        if str(exc).startswith("Bad CRC-32"):
            return "CRC-32 mismatch: its bytes differ from those that were archived"
        return f"damaged member header ({exc})"
    if isinstance(exc, EOFError):
        return "truncated: its data end before the size the archive records"
    if isinstance(exc, zlib.error):
        return f"undecodable compressed data ({exc})"
    return f"cannot be read ({exc})"
