"""One file from a URL to its place: streamed to ``<name>.part`` beside the target, resumed, checked, renamed.

- **Resume.** A ``.part`` left by a cut stream or an earlier run is continued with ``Range: bytes=N-``. Only a
  ``206`` whose ``Content-Range`` starts at N is appended; a ``200`` (the server ignores ranges) restarts from
  0, and so does a ``206`` of another range; a ``416`` with ``bytes */N`` means the ``.part`` is complete.
  Whether CDSE's ``$value`` honours ranges is unconfirmed (data-access notes), hence all the cases.
- **Cuts.** A stream that breaks (reset, closed before its length, timeout) is resumed the same way, at most
  ``retries`` times; the ``.part`` is kept when they run out, so the next run resumes it.
- **Check.** The size and the checksum of :class:`~plotsm.acquire.checksum.Expected` (MD5, SHA, BLAKE3 when
  its package is installed), hashed while streaming (an existing ``.part`` is hashed first). A file that does
  not match is removed and downloaded again from 0 once; a second mismatch is an error.
- **Rename.** Only a checked file is renamed onto its target (atomic, same folder): a target is never seen
  half-written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3.exceptions

from plotsm.acquire.checksum import Expected, Hasher, new_hasher
from plotsm.acquire.client import Auth, Cancelled, Client, DownloadError, describe_failure, shown
from plotsm.atomic import storage_error

#: Bytes read from the network per write [D: 64 KiB. requests drops the bytes of an unfinished chunk when the
#: stream breaks, so a cut loses at most this much; small enough to lose little, large enough for GB/s].
CHUNK_BYTES = 1 << 16
PART_SUFFIX = ".part"
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
#: Errors of a stream that broke after it started.
_CUT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)

#: ``progress(bytes on disk, total or None)`` of one file.
Bytes = Callable[[int, int | None], None]


class Mismatch(Exception):
    """A complete download that is not the expected file."""


@dataclass(frozen=True)
class Fetched:
    """A file in place: its ``size``, its ``digest`` of ``algorithm``, how it was checked (``verified``), the bytes
    kept from an earlier ``.part`` (``resumed_from``) and the bytes received (``received``)."""

    size: int
    algorithm: str
    digest: str
    verified: str
    resumed_from: int
    received: int


def part_path(target: Path) -> Path:
    return target.with_name(target.name + PART_SUFFIX)


def fetch_file(client: Client, url: str, target: Path, expected: Expected, *, auth: Auth | None = None,
               progress: Bytes | None = None) -> Fetched:
    """Download ``url`` to ``target`` (see the module docstring); :class:`DownloadError` naming the URL and the
    cause when it fails, :class:`~plotsm.errors.StorageError` when the disk refuses."""
    part = part_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            try:
                fetched = _attempt(client, url, part, expected, auth, progress)
            except Mismatch as exc:
                part.unlink(missing_ok=True)
                if attempt == 2:
                    raise DownloadError(f"{shown(url)}: {exc}, twice; the partial file was removed.") from None
                client.notify(f"{target.name}: {exc}; downloading it again from the start")
                continue
            os.replace(part, target)
            return fetched
    except OSError as exc:
        raise storage_error(exc.filename or part, exc) from None
    raise AssertionError("unreachable")


def hash_file(path: Path, algorithm: str) -> str | None:
    """The hex digest of ``path`` (None when ``algorithm`` cannot be computed here)."""
    hasher = new_hasher(algorithm)
    if hasher is None:
        return None
    _hash_into(hasher, path, path.stat().st_size)
    return hasher.hexdigest()


def _hash_into(hasher: Hasher, path: Path, n_bytes: int) -> None:
    with open(path, "rb") as f:
        left = n_bytes
        while left > 0 and (block := f.read(min(CHUNK_BYTES, left))):
            hasher.update(block)
            left -= len(block)


def _attempt(client: Client, url: str, part: Path, expected: Expected, auth: Auth | None,
             progress: Bytes | None) -> Fetched:
    algorithm = expected.algorithm if expected.checkable and expected.algorithm else "md5"
    have = part.stat().st_size if part.exists() else 0
    if expected.size is not None and have > expected.size:
        part.unlink()
        have = 0
    resumed_from, received, cuts = have, 0, 0
    hasher: Hasher | None = None
    announced: int | None = None
    while not (expected.size is not None and have == expected.size and have > 0):
        opened = client.open(url, auth=auth, headers={"Range": f"bytes={have}-"} if have else None)
        response = opened.response
        with response:
            status = response.status_code
            if status == 416 and have and (m := _UNSATISFIED.match(response.headers.get("Content-Range", ""))) \
                    and int(m[1]) == have:
                announced = have
                break  # the .part already holds the whole file
            start = _range_start(response) if status == 206 else 0
            if status == 416 or (status == 206 and start != have):
                part.unlink(missing_ok=True)
                resumed_from = have = 0
                client.notify(f"{shown(opened.url)}: the server did not send the range asked for "
                              f"(HTTP {status}); starting again from 0")
                cuts += 1
                if cuts > client.policy.retries:
                    raise DownloadError(f"{shown(opened.url)}: the server sends no usable range.")
                continue
            if status == 200 and have:
                client.notify(f"{shown(opened.url)}: the server ignored the range (HTTP 200); starting again from 0")
                resumed_from = have = 0
            announced = _announced_total(response, have)
            if hasher is None or have == 0:
                hasher = _hasher_for(algorithm, part, have)
            try:
                with open(part, "ab" if have else "wb") as f:
                    for block in response.iter_content(CHUNK_BYTES):
                        if client.stop.is_set():
                            raise Cancelled()
                        f.write(block)
                        hasher.update(block)
                        have += len(block)
                        received += len(block)
                        if progress is not None:
                            progress(have, expected.size if expected.size is not None else announced)
            except _CUT as exc:
                cuts += 1
                reason = describe_failure(exc)
                if cuts > client.policy.retries:
                    raise DownloadError(f"{shown(opened.url)}: the transfer broke {cuts} times ({reason}); "
                                        f"{have} bytes are kept in {part.name}: run again to resume.") from None
                wait = client.policy.backoff(cuts)
                client.notify(f"{shown(opened.url)}: {reason} after {have} bytes; resuming in {wait:g} s")
                client.wait(wait)
                continue
        if announced is None or have >= announced:
            break
        cuts += 1  # the stream ended early without an error (no length to enforce): resume like a cut
        if cuts > client.policy.retries:
            raise DownloadError(f"{shown(opened.url)}: the stream ended at {have} of {announced} bytes, {cuts} times.")
    if hasher is None:  # nothing streamed in this attempt (the .part was complete): hash it
        hasher = _hasher_for(algorithm, part, have)
    return _checked(part, have, expected, algorithm, hasher.hexdigest(), announced, resumed_from, received)


def _checked(part: Path, have: int, expected: Expected, algorithm: str, digest: str, announced: int | None,
             resumed_from: int, received: int) -> Fetched:
    size = part.stat().st_size
    if size != have:
        raise Mismatch(f"{size} bytes on disk but {have} written")
    if expected.size is not None and size != expected.size:
        raise Mismatch(f"{size} bytes where {expected.source} say {expected.size}")
    if announced is not None and size != announced:
        raise Mismatch(f"{size} bytes where the server announced {announced}")
    if expected.checkable and digest != expected.digest:
        raise Mismatch(f"{algorithm.upper()} {digest} differs from {expected.digest} ({expected.source})")
    verified = expected.how if expected.how != "none" else ("length announced by the server" if announced is not None
                                                            else "none")
    return Fetched(size=size, algorithm=algorithm, digest=digest, verified=verified, resumed_from=resumed_from,
                   received=received)


def _hasher_for(algorithm: str, part: Path, have: int) -> Hasher:
    hasher = new_hasher(algorithm) or new_hasher("md5")
    assert hasher is not None
    if have:
        _hash_into(hasher, part, have)
    return hasher


def _range_start(response: requests.Response) -> int | None:
    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(m[1]) if m else None


def _announced_total(response: requests.Response, have: int) -> int | None:
    """The whole file's length the answer announces: Content-Range's total (206), else Content-Length (200)."""
    if response.status_code == 206:
        m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        return int(m[3]) if m and m[3] != "*" else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


__all__ = ["CHUNK_BYTES", "PART_SUFFIX", "Fetched", "fetch_file", "hash_file", "part_path"]
