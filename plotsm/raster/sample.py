"""Checking a raster on a sample of its own blocks before anything is computed (:func:`inspect_raster`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from plotsm.errors import InputError
from plotsm.raster.decoding import Decoding, ValueStats, resolve_decoding
from plotsm.raster.grid import Grid, PathLike, open_raster
from plotsm.raster.quantities import Encoding, Quantity

SAMPLE_BLOCKS = 16
SAMPLE_PIXELS = 1 << 17


def sample_windows(src: Any, band: int = 1, n: int = SAMPLE_BLOCKS) -> list[Window]:
    """Up to ``n`` of the raster's own blocks, spread over it (centre first, then a regular lattice), so that a
    sample costs a few block decodes whatever the raster's size."""
    rows, cols = src.block_shapes[band - 1]
    rows, cols = max(1, min(rows, src.height)), max(1, min(cols, src.width))
    n_r, n_c = -(-src.height // rows), -(-src.width // cols)
    side = max(1, int(math.ceil(math.sqrt(n))))
    picks = [(n_r // 2, n_c // 2)]
    for i in np.unique(np.linspace(0, n_r - 1, min(side, n_r)).round().astype(int)):
        for j in np.unique(np.linspace(0, n_c - 1, min(side, n_c)).round().astype(int)):
            if (int(i), int(j)) not in picks:
                picks.append((int(i), int(j)))
    return [Window(j * cols, i * rows, min(cols, src.width - j * cols), min(rows, src.height - i * rows))
            for i, j in picks[:n]]


def inspect_raster(path: PathLike, quantity: Quantity, encoding: Encoding = Encoding(), band: int = 1) -> Decoding:
    """Open ``path``, resolve its decoding as ``quantity`` and check a sample of its blocks; return the decoding.

    Raises InputError (missing, unreadable, no CRS, an encoding that cannot be interpreted, values that are not
    the quantity: see the module docstring), UsageError for options that contradict the file.
    """
    with open_raster(path) as src:
        Grid.from_dataset(src, path)
        decoding = resolve_decoding(src, path, quantity, encoding, band)
        stats = ValueStats()
        for window in sample_windows(src, band):
            try:
                raw = src.read(band, window=window)
            except RasterioError as exc:
                raise InputError(f"{path}: cannot read pixels ({exc}). The file is corrupt or truncated: "
                                 "re-create it.") from exc
            stats.merge(decoding.decode(raw, sample_every=1)[1])
            if stats.n_valid >= SAMPLE_PIXELS:
                break
    decoding.check(stats)
    return decoding
