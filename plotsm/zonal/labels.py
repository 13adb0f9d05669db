"""Labels: which pixels belong to which parcel, on a raster's grid.

The label raster of the centre rule (:func:`label_windows`, :func:`rasterize_labels`), the exact coverage
fractions of the coverage rule (:func:`coverage_windows`, :func:`coverage_weights`, computed by exactextract),
both window by window, and the parcels' fingerprint (:func:`parcels_fingerprint`) that keys their cache.
Parcels come already reprojected to the grid's CRS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import scipy.sparse as sp
import shapely
from affine import Affine
from exactextract import exact_extract
from exactextract.raster import RasterSource

from plotsm.errors import InputError
from plotsm.raster import Grid
from plotsm.zonal.records import CoverageWindow


def _geometries(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions and geometries of the parcels that have a non-empty geometry."""
    geoms = gdf.geometry.to_numpy()
    keep = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    return keep, geoms[keep]


def _window_parcels(gdf: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[tuple[Grid, np.ndarray, np.ndarray]]:
    """Each window of ``rows`` rows as a grid of its own, with the row positions and geometries of the parcels
    whose bounding box meets it (in row order)."""
    idx, geoms = _geometries(gdf)
    bounds = shapely.bounds(geoms) if len(idx) else np.zeros((0, 4))
    for r0 in range(0, grid.height, rows):
        nrows = min(rows, grid.height - r0)
        window = Grid(grid.crs, grid.transform @ Affine.translation(0, r0), grid.width, nrows)
        corners = np.array([window.transform @ (c, r) for c in (0, grid.width) for r in (0, nrows)])
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        meets = (bounds[:, 0] <= x1) & (bounds[:, 2] >= x0) & (bounds[:, 1] <= y1) & (bounds[:, 3] >= y0)
        yield window, idx[meets], geoms[meets]


def label_windows(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[np.ndarray]:
    """The label raster, ``rows`` rows at a time (int32: parcel row position 0..n-1, -1 for background).

    Pixel-centre rule (``all_touched=False``). Only the parcels whose bounding box meets a window are
    rasterised into it, so memory holds one window and the geometries crossing it, whatever the grid size.
    Overlapping parcels: one label per pixel, the later row wins; the rule assumes non-overlapping parcels
    (a partition), see the module docstring.
    """
    for window, idx, geoms in _window_parcels(gdf_in_grid_crs, grid, rows):
        if not len(idx):
            yield np.full((window.height, window.width), -1, dtype=np.int32)
            continue
        yield rasterio.features.rasterize(
            zip(geoms, idx.tolist()),
            out_shape=(window.height, window.width),
            transform=window.transform,
            fill=-1,
            all_touched=False,
            dtype="int32",
        )


def rasterize_labels(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid) -> np.ndarray:
    """Label raster (int32, ``grid`` shape): parcel row position 0..n-1, -1 for background; see label_windows."""
    rows = max(1, (1 << 22) // max(grid.width, 1))
    return np.concatenate(list(label_windows(gdf_in_grid_crs, grid, rows)), axis=0)


class _GridSource(RasterSource):
    """A grid without values for exactextract, which only needs its geometry to compute coverage fractions."""

    def __init__(self, grid: Grid) -> None:
        super().__init__()
        t = grid.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise InputError(
                "rotated or south-up rasters are not supported by rule='coverage'. "
                "Warp the raster to a north-up grid (gdalwarp) or use rule='center'."
            )
        self._res = (t.a, -t.e)
        self._extent = (t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f)

    def res(self) -> tuple[float, float]:
        return self._res

    def extent(self) -> tuple[float, float, float, float]:
        return self._extent

    def srs_wkt(self) -> None:
        return None

    def nodata_value(self) -> None:
        return None

    def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
        return np.zeros((ny, nx), dtype=np.uint8)


#: parcels handed to exactextract at a time when computing coverage weights
COVERAGE_BATCH = 5000


def coverage_windows(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid, rows: int) -> Iterator[CoverageWindow]:
    """Exact coverage fractions of the pixels of each window of ``rows`` rows by the parcels.

    Per window: ``counts`` (parcels covering each pixel, row-major), ``parcels`` (int32 row positions) and
    ``fractions`` (float32, exactextract's own precision) of each (pixel, parcel) pair, sorted by pixel then
    parcel. Computed by exactextract (``cell_id``, ``coverage``) on the window's grid for the parcels meeting
    it, in batches: memory holds one window, whatever the grid size. A fraction only depends on its cell, so
    parcels cut by window edges get the same fractions as on the whole grid.
    """
    n = len(gdf_in_grid_crs)
    for window, idx, geoms in _window_parcels(gdf_in_grid_crs, grid, rows):
        source = _GridSource(window)
        cells, parcels, fractions = [], [], []
        for b0 in range(0, len(idx), COVERAGE_BATCH):
            feats = gpd.GeoDataFrame({"_row": idx[b0 : b0 + COVERAGE_BATCH]}, geometry=geoms[b0 : b0 + COVERAGE_BATCH],
                                     crs=gdf_in_grid_crs.crs)
            res = exact_extract(source, feats, ["cell_id", "coverage"], include_cols=["_row"], output="pandas")
            sizes = res["cell_id"].map(len).to_numpy()
            if not sizes.sum():
                continue
            fraction = np.concatenate(res["coverage"].to_list()).astype(np.float32)
            keep = fraction > 0
            fractions.append(fraction[keep])
            cells.append(np.concatenate(res["cell_id"].to_list()).astype(np.int32)[keep])  # window cells < 2**31
            parcels.append(np.repeat(res["_row"].to_numpy().astype(np.int32), sizes)[keep])
            del res
        if not cells:
            yield np.zeros(window.n_pixels, np.uint16), np.zeros(0, np.int32), np.zeros(0, np.float32)
            continue
        cell, parcel, fraction = np.concatenate(cells), np.concatenate(parcels), np.concatenate(fractions)
        del cells, parcels, fractions
        by_pixel = sp.coo_matrix((fraction, (cell, parcel)), shape=(window.n_pixels, n)).tocsr()  # counting sort
        del cell, parcel, fraction
        by_pixel.sort_indices()
        per_pixel = np.diff(by_pixel.indptr)
        count_dtype = np.uint16 if per_pixel.max() < 2**16 else np.int32
        yield per_pixel.astype(count_dtype), by_pixel.indices.astype(np.int32), by_pixel.data.astype(np.float32)


def coverage_weights(gdf_in_grid_crs: gpd.GeoDataFrame, grid: Grid) -> sp.csr_matrix:
    """Exact fraction of each pixel covered by each parcel: CSR matrix, n_parcels × n_pixels (row-major pixels),
    float32 (exactextract's precision). Assembled from :func:`coverage_windows`."""
    rows = max(1, (1 << 22) // max(grid.width, 1))
    pixels, parcels, fractions = [], [], []
    for r0, (counts, parcel, fraction) in zip(range(0, grid.height, rows), coverage_windows(gdf_in_grid_crs, grid, rows)):
        pixels.append(np.repeat(np.arange(r0 * grid.width, r0 * grid.width + counts.size), counts))
        parcels.append(parcel)
        fractions.append(fraction)
    return sp.csr_matrix(
        (np.concatenate(fractions), (np.concatenate(parcels), np.concatenate(pixels))),
        shape=(len(gdf_in_grid_crs), grid.n_pixels),
    )


def parcels_fingerprint(gdf: gpd.GeoDataFrame) -> str:
    """Hash of the parcels' CRS, ids and geometry WKB: a label cache key part (16 hex digits)."""
    h = hashlib.sha256()
    h.update((gdf.crs.to_wkt() if gdf.crs is not None else "").encode())
    ids = gdf["parcel_id"] if "parcel_id" in gdf.columns else pd.Series(gdf.index)
    h.update("\x1f".join(map(str, ids.to_list())).encode())
    for wkb in shapely.to_wkb(gdf.geometry.to_numpy(), hex=False):
        h.update(b"\x00" if wkb is None else wkb)
    return h.hexdigest()[:16]
