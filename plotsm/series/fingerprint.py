"""Fingerprints of acquisitions, and the cached sha256 of their input files.

Every acquisition gets a fingerprint: sha256 over its input rasters' sha256, the run settings, the a-priori
state, the parcel set and the networks' versions. An acquisition already stored with the same fingerprint is
skipped by :func:`plotsm.series.run_series`. File hashes are cached in ``<out>/cache/sha256.json`` under (path,
size, mtime), so an unchanged file is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from plotsm.atomic import atomic_path
from plotsm.series.jobs import SeriesJob


class FileHashes:
    """sha256 of files, cached on disk under (resolved path, size, mtime_ns)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._cache: dict[str, list[Any]] = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            self._cache = {}  # a damaged cache is only a cache
        self._dirty = False

    def sha256(self, file: Path) -> str:
        resolved = str(Path(file).resolve())
        st = os.stat(resolved)
        hit = self._cache.get(resolved)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        h = hashlib.sha256()
        with open(resolved, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
        self._cache[resolved] = [st.st_size, st.st_mtime_ns, h.hexdigest()]
        self._dirty = True
        return h.hexdigest()

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self._cache))
        self._dirty = False


def fingerprint(job: SeriesJob, inputs: list[dict[str, str]], parcels_key: str, network_version: str) -> str:
    """sha256 over what determines an acquisition's result (see the module docstring)."""
    payload = {
        "inputs": sorted((i["role"], i["sha256"]) for i in inputs),
        "settings": job.settings.to_dict(),
        "acquisition": [job.acq.datetime_utc.isoformat(), job.acq.platform, job.acq.orbit_direction,
                        job.acq.relative_orbit],
        "parcels": parcels_key,
        "network": network_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
