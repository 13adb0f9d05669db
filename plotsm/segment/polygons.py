"""Plots as polygons: the final label raster vectorised by GDAL's polygonize (:func:`rasterio.features.shapes`,
4-connected, so every plot is one polygon, with holes where it surrounds another plot or no data).

The raster is vectorised in bands of rows to keep GDAL's and Python's memory bounded; a plot that spans
several bands comes out in pieces that share whole pixel edges, joined by :func:`shapely.coverage_union_all`
(exact on such a coverage, and much faster than a general union). Pixel-edge polygons are valid by
construction; any that is not (two pixels touching at a corner only cannot be one 4-connected plot, but GDAL's
ring builder is checked anyway) is repaired with :func:`shapely.make_valid`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio import features

from plotsm.progress import Steps

#: Rows vectorised at once [D]: 1024 rows of a full tile are 45 MB of int32 labels.
BAND_ROWS = 1024


def polygonize(labels: np.ndarray, transform: Affine, steps: Steps | None = None,
               band_rows: int = BAND_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """(plot ids, shapely polygons) of the label raster (0 = none), one polygon per id, sorted by id."""
    ids: list[np.ndarray] = []
    geoms: list[np.ndarray] = []
    height = labels.shape[0]
    n_bands = max(1, -(-height // band_rows))
    for k, r0 in enumerate(range(0, height, band_rows), start=1):
        block = labels[r0:r0 + band_rows]
        t = transform @ Affine.translation(0, r0)
        found = list(features.shapes(block, mask=block > 0, connectivity=4, transform=t))
        if found:
            ids.append(np.fromiter((v for _, v in found), dtype=np.int64, count=len(found)))
            shapes = np.empty(len(found), dtype=object)
            shapes[:] = [shapely.geometry.shape(g) for g, _ in found]
            geoms.append(shapes)
        if steps:
            steps(k, n_bands)
    if not ids:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    all_ids = np.concatenate(ids)
    all_geoms = np.concatenate(geoms)
    order = np.argsort(all_ids, kind="stable")
    all_ids, all_geoms = all_ids[order], all_geoms[order]
    uniq, start, count = np.unique(all_ids, return_index=True, return_counts=True)
    out = all_geoms[start].copy()
    for j in np.flatnonzero(count > 1):  # plots cut by a band edge (a few per band): join their pieces
        out[j] = shapely.coverage_union_all(all_geoms[start[j]:start[j] + count[j]])
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.make_valid(out[bad])
    return uniq, out


def plot_table(ids: np.ndarray, geoms: np.ndarray, n_pixels: np.ndarray, mean: np.ndarray, std: np.ndarray,
               labels: list[str], pixel_area_m2: float) -> pd.DataFrame:
    """The attributes of the plots ``ids`` (1-based rows of ``n_pixels``/``mean``/``std``)."""
    rows = ids - 1
    data: dict[str, np.ndarray] = {
        "plot_id": ids.astype(np.int64),
        "area_m2": shapely.area(geoms),
        "n_pixels": n_pixels[rows].astype(np.int64),
    }
    for k, label in enumerate(labels):
        name = label.replace("-", "_")
        data[f"ndvi_mean_{name}"] = mean[rows, k].astype(np.float32)
        data[f"ndvi_std_{name}"] = std[rows, k].astype(np.float32)
    frame = pd.DataFrame(data)
    frame.attrs["pixel_area_m2"] = pixel_area_m2
    return frame
