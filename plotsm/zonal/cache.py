"""The label cache: label rasters and coverage windows on disk (:class:`LabelCache`), written and read window by
window, keyed by rule, grid and parcels fingerprint.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from plotsm.atomic import atomic_path
from plotsm.raster import Grid
from plotsm.zonal.records import CoverageWindow, Rule


class LabelCache:
    """Label rasters (``.npy``, centre rule) and coverage matrices (``.npz``) on disk, one file per key.

    Key = rule + grid key + parcels fingerprint (+ window rows for coverage). Both are written and read window
    by window, so memory stays bounded on a full tile: the label raster as one ``.npy``; the coverage as an
    uncompressed ``.npz`` holding, per window, the pixel-major sparse matrix (elements per pixel, parcel and
    fraction of each element: CSR ``indptr`` differences, ``indices``, ``data``). Files are written under a
    temporary name and renamed, so a reader never sees half a file; a file that does not fit the grid or cannot
    be read counts as a miss (and is rebuilt).
    """

    SUFFIX = {"center": ".npy", "coverage": ".npz"}
    COVERAGE_MEMBERS = ("counts", "parcels", "fractions")

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(cache_dir)

    @staticmethod
    def key(grid: Grid, fingerprint: str, rule: Rule) -> str:
        return f"{rule}-{grid.key()}-{fingerprint}"

    def path(self, key: str) -> Path:
        return self.dir / (key + self.SUFFIX[key.split("-", 1)[0]])

    @contextmanager
    def _atomic(self, key: str) -> Iterator[Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as fh:
            yield fh

    def save_coverage_windows(self, key: str, windows: Iterable[CoverageWindow]) -> Iterator[CoverageWindow]:
        """Pass coverage windows on while writing them as members of an (uncompressed) ``.npz``."""
        with self._atomic(key) as fh, zipfile.ZipFile(fh, mode="w", allowZip64=True) as zf:
            for i, window in enumerate(windows):
                for name, array in zip(self.COVERAGE_MEMBERS, window):
                    with zf.open(f"{name}_{i}.npy", mode="w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
                yield window

    def load_coverage_windows(self, key: str, grid: Grid, rows: int) -> Iterator[CoverageWindow] | None:
        """Coverage windows read from the cache, or None when the file is missing or does not fit the grid."""
        path = self.path(key)
        n_windows = -(-grid.height // rows)
        expected = {f"{name}_{i}" for i in range(n_windows) for name in self.COVERAGE_MEMBERS}
        try:
            with np.load(path, allow_pickle=False) as npz:
                if set(npz.files) != expected:
                    return None
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
        return self._read_coverage_windows(path, n_windows)

    def _read_coverage_windows(self, path: Path, n_windows: int) -> Iterator[CoverageWindow]:
        with np.load(path, allow_pickle=False) as npz:
            for i in range(n_windows):
                counts, parcels, fractions = (npz[f"{name}_{i}"] for name in self.COVERAGE_MEMBERS)
                yield counts, parcels, fractions

    def save_windows(self, key: str, grid: Grid, windows: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass label windows on while writing them; the file is renamed into place after the last one."""
        with self._atomic(key) as fh:
            header = {"descr": np.dtype(np.int32).str, "fortran_order": False, "shape": (grid.height, grid.width)}
            np.lib.format.write_array_header_1_0(fh, header)
            for window in windows:
                fh.write(np.ascontiguousarray(window, dtype=np.int32).tobytes())
                yield window

    def load_windows(self, key: str, grid: Grid, rows: int) -> Iterator[np.ndarray] | None:
        """Label windows of ``rows`` rows read from the cached raster, or None when it is missing or unfit."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                shape, fortran, dtype = read_header[version](fh)
                offset = fh.tell()
        except (OSError, ValueError, KeyError):
            return None
        expected = offset + grid.n_pixels * np.dtype(np.int32).itemsize
        if shape != (grid.height, grid.width) or fortran or dtype != np.int32 or path.stat().st_size != expected:
            return None
        return self._read_windows(path, offset, grid, rows)

    @staticmethod
    def _read_windows(path: Path, offset: int, grid: Grid, rows: int) -> Iterator[np.ndarray]:
        with open(path, "rb") as fh:
            fh.seek(offset)
            for r0 in range(0, grid.height, rows):
                nrows = min(rows, grid.height - r0)
                yield np.fromfile(fh, dtype=np.int32, count=nrows * grid.width).reshape(nrows, grid.width)
