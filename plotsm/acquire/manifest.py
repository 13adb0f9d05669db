"""What a download folder holds: ``plotsm-download.json``, and one writer at a time.

The manifest records every file downloaded and checked, by its path under the folder: item, collection, asset,
the plan's href, size, checksum (algorithm and hex digest), how it was checked and when. It is rewritten
atomically after each file (:func:`plotsm.atomic.atomic_path`), so a killed download leaves a manifest that is
true. A re-run skips a file whose entry is there and whose file has the recorded size, unless the plan now
expects another size or checksum. Nothing secret is in it: hrefs carry no credentials (CDSE's token and
GEODES' key travel in headers).

:func:`folder_lock` keeps two plotsm processes from appending to the same ``.part`` files: a lock file holding
the host and process id, taken over when that process is gone.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plotsm.acquire.checksum import Expected
from plotsm.atomic import atomic_path, pid_alive
from plotsm.errors import InputError, StorageError, option

MANIFEST_NAME = "plotsm-download.json"
LOCK_NAME = ".plotsm-download.lock"
#: Version of the manifest's layout (``plotsm:download`` in the file).
MANIFEST_VERSION = 1


class Manifest:
    """The manifest of folder ``root`` (see the module docstring); thread-safe."""

    def __init__(self, root: Path, files: dict[str, dict[str, Any]] | None = None) -> None:
        self.root, self.path = root, root / MANIFEST_NAME
        self.files: dict[str, dict[str, Any]] = files or {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> Manifest:
        """The manifest of ``root`` (empty when there is none); :class:`InputError` for one plotsm cannot read."""
        root = Path(root)
        path = root / MANIFEST_NAME
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(root)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read the download manifest ({type(exc).__name__}). Remove it: the next "
                             "run checks the files already there against the plan's checksums.") from None
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, dict) or not isinstance(doc.get("plotsm:download"), int):
            raise InputError(f"{path}: not a download manifest of plotsm. Remove it or pass another {option('out')}.")
        if doc["plotsm:download"] > MANIFEST_VERSION:
            raise InputError(f"{path}: written by a newer plotsm (manifest version {doc['plotsm:download']}). "
                             "Upgrade plotsm.")
        return cls(root, {k: v for k, v in files.items() if isinstance(v, dict)})

    def is_present(self, relpath: str, expected: Expected) -> bool:
        """Whether ``relpath`` was downloaded and checked, is still there with its size, and is what
        ``expected`` (when known) says."""
        entry = self.files.get(relpath)
        if entry is None:
            return False
        size, checksum = entry.get("size"), entry.get("checksum") or {}
        if expected.size is not None and size != expected.size:
            return False
        if (expected.digest is not None and checksum.get("algorithm") == expected.algorithm
                and checksum.get("value") != expected.digest):
            return False
        try:
            return (self.root / relpath).stat().st_size == size
        except OSError:
            return False

    def record(self, relpath: str, entry: dict[str, Any]) -> None:
        """Add or replace the entry of ``relpath`` (``downloaded_at`` added) and write the manifest."""
        entry = {**entry, "downloaded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with self._lock:
            self.files[relpath] = entry
            self._write()

    def _write(self) -> None:
        from plotsm import __version__

        doc = {"plotsm:download": MANIFEST_VERSION, "plotsm_version": __version__, "files": dict(sorted(self.files.items()))}
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """Hold ``root``'s download lock for the block (:class:`StorageError` when a live process holds it)."""
    path = root / LOCK_NAME
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _held_by_other(path):
                raise StorageError(f"{root}: another plotsm download is writing here ({path.name}: "
                                   f"{_read(path)}). Wait for it, or pass another {option('out')}.") from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    else:
        raise StorageError(f"{root}: cannot take the download lock {path.name}. Remove it if no download runs.")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _held_by_other(path: Path) -> bool:
    host, _, pid = _read(path).rpartition(" ")
    if host != socket.gethostname():
        return bool(host)  # another host's lock: it cannot be checked, so it holds
    return pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))


__all__ = ["LOCK_NAME", "MANIFEST_NAME", "MANIFEST_VERSION", "Manifest", "folder_lock"]
