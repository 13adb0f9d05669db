"""What a downloaded file must be: its size and checksum as the catalogue gives them, and the hashing that checks
them.

Sources, by provider:

- CDSE OData product JSON: ``ContentLength`` and ``Checksum [{Algorithm: MD5 | BLAKE3, Value}]`` (whole products);
- STAC items: an asset's ``file:size`` and ``file:checksum``, a *multihash* in hex: code, length, digest
  (MD5 ``d50110…``, SHA-1 ``1114…``, SHA-256 ``1220…``, SHA-512 ``1340…``, BLAKE3 ``1e20…``)
  [C: multiformats multicodec table]; ``d510…`` (MD5 without the varint's second byte) is read too, as older
  plans of ``plotsm search`` wrote GEODES' MD5s so;
- GEODES: the asset description's "Checksum MD5" and "File size", read into ``file:checksum``/``file:size``
  by the search (:func:`plotsm.acquire.geodes.with_file_facts`).

MD5 and the SHA family are checked with :mod:`hashlib`, BLAKE3 with the ``blake3`` package (a dependency of
plotsm); where that package is missing (a platform without its wheel) only the size is checked, and
:attr:`Expected.how` says so. Where the catalogue gives both MD5 and BLAKE3 (CDSE OData), MD5 is used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

#: multihash prefix (hex of the varint code and the digest length) → algorithm.
MULTIHASH_PREFIXES = {"d50110": "md5", "1114": "sha1", "1220": "sha256", "1340": "sha512", "1e20": "blake3",
                      "d510": "md5"}
_DIGEST_HEX = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128, "blake3": 64}
_PREFERENCE = ("md5", "sha256", "sha512", "sha1", "blake3")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> object: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str) -> Hasher | None:
    """A hasher of ``algorithm``, or None when this Python cannot compute it (BLAKE3 without its package)."""
    if algorithm == "blake3":
        try:
            import blake3  # type: ignore[import-not-found]  # optional: see the module docstring
        except ImportError:
            return None
        hasher: Hasher = blake3.blake3()
        return hasher
    return hashlib.new(algorithm) if algorithm in hashlib.algorithms_available else None


@dataclass(frozen=True)
class Expected:
    """A file's expected ``size`` in bytes and ``digest`` (hex, lower case) of ``algorithm``; any may be None.
    ``source`` says where they were read (for messages)."""

    size: int | None = None
    algorithm: str | None = None
    digest: str | None = None
    source: str = ""

    @property
    def checkable(self) -> bool:
        """Whether the digest can be computed here."""
        return self.algorithm is not None and self.digest is not None and new_hasher(self.algorithm) is not None

    @property
    def how(self) -> str:
        """What the check will be: ``md5``, ``sha256``…, ``size`` or ``none``; BLAKE3 without its package is
        ``size (blake3 not installed)``."""
        if self.checkable:
            return str(self.algorithm)
        if self.size is not None:
            return "size (blake3 not installed)" if self.algorithm == "blake3" else "size"
        return "none"


def parse_multihash(value: Any) -> tuple[str, str] | None:
    """(algorithm, hex digest) of a hex multihash, or None when it is not one plotsm knows."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    for prefix, algorithm in MULTIHASH_PREFIXES.items():
        digest = text[len(prefix):]
        if text.startswith(prefix) and len(digest) == _DIGEST_HEX[algorithm] and re.fullmatch(r"[0-9a-f]+", digest):
            return algorithm, digest
    return None


def from_asset(asset: Mapping[str, Any]) -> Expected:
    """The size and checksum of a STAC asset (``file:size``, ``file:checksum``)."""
    size = asset.get("file:size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    parsed = parse_multihash(asset.get("file:checksum"))
    return Expected(size=size, algorithm=parsed[0] if parsed else None, digest=parsed[1] if parsed else None,
                    source="the plan's file:size and file:checksum")


def from_odata(product: Mapping[str, Any]) -> Expected:
    """The size and checksum of an OData product JSON (``ContentLength``, ``Checksum``): MD5 preferred, then
    whichever this Python can compute."""
    size = product.get("ContentLength")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
    found: dict[str, str] = {}
    checksums = product.get("Checksum")
    for entry in checksums if isinstance(checksums, list) else []:
        if not isinstance(entry, Mapping):
            continue
        algorithm, value = str(entry.get("Algorithm", "")).lower(), entry.get("Value")
        if algorithm in _DIGEST_HEX and isinstance(value, str) and len(value) == _DIGEST_HEX[algorithm]:
            found[algorithm] = value.lower()
    usable = [a for a in _PREFERENCE if a in found and new_hasher(a) is not None]
    chosen = usable[0] if usable else next((a for a in _PREFERENCE if a in found), None)
    return Expected(size=size, algorithm=chosen, digest=found.get(chosen) if chosen else None,
                    source="the OData product's ContentLength and Checksum")


__all__ = ["MULTIHASH_PREFIXES", "Expected", "Hasher", "from_asset", "from_odata", "new_hasher", "parse_multihash"]
