"""Shared test helpers (pytest fixtures)."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest


def corrupt_zip_member(archive: Path, suffix: str, where: float = 0.5) -> str:
    """Flip the bits of one byte of the data of the member ending in ``suffix`` (at fraction ``where`` of its
    stored bytes); return its name. The data start is read from the member's local header in the file (its name
    and extra field may differ from the central directory's), so headers and central directory stay intact."""
    with zipfile.ZipFile(archive) as zf:
        (info,) = [i for i in zf.infolist() if i.filename.endswith(suffix)]
    raw = bytearray(archive.read_bytes())
    local = raw[info.header_offset: info.header_offset + 30]
    assert local[:4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    raw[info.header_offset + 30 + name_len + extra_len + int(info.compress_size * where)] ^= 0xFF
    archive.write_bytes(raw)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo(info.filename).CRC == info.CRC  # the archive still opens, its records unchanged
    return info.filename


@pytest.fixture
def corrupt() -> Callable[..., str]:
    """:func:`corrupt_zip_member`, for tests of damaged products."""
    return corrupt_zip_member
