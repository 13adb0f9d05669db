"""The NDVI stack to segment: monthly composites (one file per month, as ``plotsm s2 composite`` writes them),
any list of single-band NDVI rasters, or one multi-band raster (a band per month), all on one grid.

Every band goes through :func:`plotsm.raster.inspect_raster` before anything is computed, so NDVI in an encoding
plotsm cannot interpret (0–255 or 0–10000 integers without a scale, reflectances) is refused with the fix, and
the known encodings (plotsm's uint8, GDAL scale/offset, the user's ``Encoding``) are decoded. Windows are read
with a halo and padded with NaN past the raster's edges.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError
from rasterio.windows import Window

from plotsm.errors import InputError, UsageError
from plotsm.raster import Decoding, Encoding, Grid, inspect_raster, open_raster

#: A month in a file name or band description: 2024-05, 2024_05 or 202405 (the first one found).
_MONTH = re.compile(r"(?<!\d)(20\d{2})[-_]?(0[1-9]|1[0-2])(?!\d)")
_SUFFIXES = {".tif", ".tiff", ".vrt", ".jp2"}


@dataclass(frozen=True)
class Layer:
    """One band of the stack: its file, band number, label (``2024-05`` or ``b3``) and decoding."""

    path: Path
    band: int
    label: str
    decoding: Decoding


@dataclass(frozen=True)
class NdviStack:
    """The checked layers of an NDVI stack and their common grid."""

    layers: tuple[Layer, ...]
    grid: Grid

    @property
    def labels(self) -> list[str]:
        return [layer.label for layer in self.layers]

    def read(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """NDVI of rows [row0, row1) × cols [col0, col1) as float32 (layers, rows, cols), NaN where no data or past
        the raster's edges; the values are checked against NDVI's range as they are read."""
        out = np.full((len(self.layers), row1 - row0, col1 - col0), np.nan, dtype=np.float32)
        r0, r1 = max(row0, 0), min(row1, self.grid.height)
        c0, c1 = max(col0, 0), min(col1, self.grid.width)
        if r0 >= r1 or c0 >= c1:
            return out
        window = Window(c0, r0, c1 - c0, r1 - r0)
        by_path: dict[Path, list[int]] = {}
        for k, layer in enumerate(self.layers):
            by_path.setdefault(layer.path, []).append(k)
        for path, ks in by_path.items():
            with open_raster(path) as src:
                for k in ks:
                    layer = self.layers[k]
                    try:
                        raw = src.read(layer.band, window=window)
                    except RasterioError as exc:
                        raise InputError(f"{path}: cannot read band {layer.band} ({exc}). The file is corrupt or "
                                         "truncated: re-create it.") from exc
                    values, stats = layer.decoding.decode(raw)
                    layer.decoding.check(stats)
                    out[k, r0 - row0:r1 - row0, c0 - col0:c1 - col0] = values.reshape(raw.shape)
        return out


def _label(path: Path, band: int, description: str | None, multi: bool) -> str:
    for text in ((description or ""), path.stem) if multi else (path.stem, description or ""):
        m = _MONTH.search(text)
        if m:
            return f"{m.group(1)}-{m.group(2)}"
    return f"{path.stem}_b{band}" if multi else path.stem


def _files(inputs: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and not p.name.startswith("."))
            if not found:
                raise InputError(f"{path}: no NDVI raster (.tif) in the folder. Pass the folder `plotsm s2 composite` "
                                 "wrote, or the NDVI files themselves.")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder.")
    files = list(dict.fromkeys(p.resolve() for p in files))  # a file given twice is one layer
    if not files:
        raise UsageError("No NDVI raster given: pass --ndvi with a folder of monthly composites or NDVI files.")
    return files


def open_stack(inputs: Sequence[str | Path], encoding: Encoding = Encoding()) -> NdviStack:
    """The stack of ``inputs`` (folders and files), layers sorted by month when every label is a month, checked
    for one grid and for NDVI values (InputError naming the file otherwise)."""
    files = _files(inputs)
    grid: Grid | None = None
    layers: list[Layer] = []
    for path in files:
        this = Grid.from_raster(path)
        if grid is None:
            grid = this
        elif this != grid:
            raise InputError(f"{path}: grid {this.width}x{this.height} {tuple(this.transform)[:6]} differs from "
                             f"{files[0].name}'s ({grid.width}x{grid.height} {tuple(grid.transform)[:6]}); warp the "
                             "NDVI rasters onto one grid first (gdalwarp -te … -tr …).")
        with open_raster(path) as src:
            count, descriptions = src.count, list(src.descriptions)
        for band in range(1, count + 1):
            label = _label(path, band, descriptions[band - 1], count > 1)
            layers.append(Layer(path, band, label, inspect_raster(path, "ndvi", encoding, band)))
    assert grid is not None
    if not _projected(grid):
        raise InputError(f"{files[0]}: the NDVI grid is not in a projected CRS with metre units ({grid.crs}); plot "
                         "areas and the minimum area need metres. Warp it to the UTM zone first (gdalwarp -t_srs …).")
    if all(_MONTH.fullmatch(layer.label) for layer in layers):
        layers.sort(key=lambda layer: layer.label)
    seen: dict[str, Layer] = {}
    for layer in layers:
        if layer.label in seen:
            raise InputError(f"{layer.path}: month {layer.label} is also given by {seen[layer.label].path}; pass one "
                             "composite per month.")
        seen[layer.label] = layer
    return NdviStack(tuple(layers), grid)


def _projected(grid: Grid) -> bool:
    try:
        crs: Any = CRS.from_wkt(grid.crs)
        return bool(crs.is_projected) and abs(float(crs.linear_units_factor[1]) - 1.0) < 1e-9
    except (CRSError, ValueError, TypeError):
        return False
