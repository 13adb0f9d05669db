"""Writing files so that nothing half-written is ever seen or left behind.

Every file plotsm writes goes to a temporary name in the destination folder and is renamed into place once
complete (:func:`atomic_path`); a failure removes the temporary file. A process killed outright (SIGKILL, power
loss) cannot clean up after itself, so temporary names carry the host and the process id
(``.<name>.plotsm-<host>-<pid>-<random>.tmp``) and :func:`clean_stale` removes, at the next start, those of
processes that are no longer alive on this host (or, from another host sharing the folder, older than
:data:`FOREIGN_STALE_HOURS`). A live writer's temporary file is never touched.

:func:`writable_dir` checks a destination before any work starts, so an unwritable ``--out`` is a
:class:`~plotsm.errors.StorageError` (exit 6) naming the path, not a traceback after minutes of computing.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plotsm.errors import StorageError

#: A temporary file of another host is taken as stale after this many hours without change [D]: long enough for
#: any single write of plotsm (a full-tile COG takes minutes), short enough not to let a crash's leftovers pile up.
FOREIGN_STALE_HOURS = 24.0
_HOST = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40] or "host"
_TMP = re.compile(r"^\.(?P<target>.+)\.plotsm-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+\.tmp(?P<rest>.*)$")
#: Temporary names of plotsm before they carried a process id: ``.<name>.<mkstemp token>.tmp[.cog]``.
_LEGACY = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{6,12}\.tmp(?:\.cog)?$")


def temporary_name(target: str | os.PathLike[str]) -> Path:
    """A unique temporary path beside ``target`` that :func:`clean_stale` recognises as this process's."""
    target = Path(target)
    return target.with_name(f".{target.name}.plotsm-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """A plotsm temporary file or folder whose writer is gone (see the module docstring)."""
    match = _TMP.match(path.name)
    if match is None:
        return False
    if match["host"] == _HOST:
        return int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"]))
    try:
        age_h = ((now or time.time()) - path.stat().st_mtime) / 3600.0
    except OSError:
        return False
    return age_h > FOREIGN_STALE_HOURS


def clean_stale(folder: str | os.PathLike[str], target: str | None = None) -> list[Path]:
    """Remove the stale temporary files of ``folder`` (of one ``target`` name only, if given); return them.

    Legacy temporary files of ``target`` (written before temporary names carried a pid) are removed too: only a
    crashed writer leaves them, and a second writer of the same file at the same time is a conflict anyway.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    now = time.time()
    for path in root.glob(f".{target}.*" if target else ".*"):
        legacy = target is not None and (m := _LEGACY.match(path.name)) is not None and m["target"] == target
        if not (is_stale(path, now) or legacy):
            continue
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError:
            continue  # not ours to remove after all (permissions): leave it
    return removed


def storage_error(path: str | os.PathLike[str], exc: OSError, what: str = "cannot write") -> StorageError:
    """A StorageError (exit 6) naming ``path``, the reason in words, and the fix."""
    reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
              errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
              errno.ENOENT: "a folder on the way does not exist", errno.ENOTDIR: "a part of the path is a file"}.get(
        exc.errno or -1, exc.strerror or str(exc))
    return StorageError(f"{path}: {what} ({reason}). Pass a destination you can write to, or free some space.")


@contextmanager
def atomic_path(target: str | os.PathLike[str], *, clean: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on any error it is removed.

    ``clean``: remove the stale temporary files of ``target`` first. OSError on the destination (permission,
    space) becomes a StorageError naming ``target``.
    """
    target = Path(target)
    if clean:
        clean_stale(target.parent, target.name)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        if (exc.filename in (str(tmp), str(target), tmp, target) or str(exc.filename).startswith(str(tmp))
                or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)):
            raise storage_error(target, exc) from exc
        raise
    except BaseException:
        _remove(tmp)
        raise


def write_gpkg(frame: Any, target: str | os.PathLike[str], layer: str) -> Path:
    """Write GeoDataFrame ``frame`` as layer ``layer`` of GeoPackage ``target`` atomically. The temporary file
    ends in ``.gpkg`` (GDAL warns about any other extension, as the GeoPackage specification asks)."""
    target = Path(target)
    with atomic_path(target) as tmp:
        inner = tmp.with_name(tmp.name + ".gpkg")
        try:
            frame.to_file(inner, driver="GPKG", layer=layer, engine="pyogrio")
            os.replace(inner, tmp)
        finally:
            _remove(inner)
    return target


def _remove(path: Path) -> None:
    try:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    except OSError:
        pass


def writable_dir(folder: str | os.PathLike[str], option: str = "--out") -> Path:
    """Create ``folder`` if needed and check that a file can be written in it; StorageError (exit 6) if not."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise StorageError(f"{option} {path}: is a file, not a folder. Pass a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as exc:
        raise storage_error(path, exc, f"{option}: cannot write in this folder") from None
    return path


def _probe(folder: Path) -> None:
    """Create and remove an empty file in ``folder`` (OSError when that cannot be done)."""
    probe = temporary_name(folder / "write-check")
    probe.write_bytes(b"")
    probe.unlink()


def check_destination(folder: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check, without creating anything, that ``folder`` is or can become a writable folder: it is a writable
    folder, or its nearest existing parent is (StorageError, exit 6, otherwise). Commands that verify their
    inputs before creating the folder call this first, so a bad destination is reported before any work."""
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StorageError(f"{option} {path}: {existing} is a file, not a folder. Pass a folder.")
    try:
        _probe(existing)
    except OSError as exc:
        raise storage_error(path, exc, f"{option}: cannot write in {existing}") from None
    return path


def writable_file(target: str | os.PathLike[str], option: str = "--to") -> Path:
    """Check that ``target`` can be written (its folder created if needed); StorageError (exit 6) if not."""
    path = Path(target)
    writable_dir(path.parent if str(path.parent) else Path("."), option)
    if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
        raise StorageError(f"{option} {path}: cannot replace this file (permission denied). Pass another path.")
    return path


__all__ = ["FOREIGN_STALE_HOURS", "atomic_path", "check_destination", "clean_stale", "is_stale", "pid_alive", "storage_error",
           "temporary_name", "writable_dir", "writable_file", "write_gpkg"]
