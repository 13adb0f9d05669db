"""The agricultural share of each plot, from a categorical land-cover raster or a vector layer.

**Raster** (ESA WorldCover: class 40 = cropland; Theia OSO; any integer classes): the plots are taken into the
mask's CRS and :func:`exactextract.exact_extract` gives, per plot, the coverage-weighted area of each class
(``frac`` × ``count``: a mask pixel half inside a plot counts half); the share is the area of the kept classes
over the plot's area in mask pixels, so mask pixels of no data or outside the mask's extent count as not
agricultural. **Vector** (a crop layer, fields digitised on imagery): the area of the plot inside the union of
the layer's polygons over the plot's area, exactly (:mod:`shapely`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from plotsm.errors import InputError, UsageError, option
from plotsm.raster import open_raster

_VECTOR = {".gpkg", ".shp", ".geojson", ".json", ".parquet", ".fgb", ".gml", ".kml", ".sqlite"}


def agricultural_share(plots: gpd.GeoDataFrame, mask: str | Path, classes: Sequence[int]) -> np.ndarray:
    """Share (0–1) of each plot's area inside the mask: classes ``classes`` of a raster, or a vector layer."""
    path = Path(mask)
    if not path.exists():
        raise InputError(f"{path}: no such mask file.")
    if path.suffix.lower() in _VECTOR:
        return _vector_share(plots, path)
    if not classes:
        raise UsageError(f"{option('mask_classes')}: a raster mask needs the classes to keep (e.g. 40 for "
                         "ESA WorldCover cropland).")
    return _raster_share(plots, path, classes)


def _raster_share(plots: gpd.GeoDataFrame, path: Path, classes: Sequence[int]) -> np.ndarray:
    from exactextract import exact_extract

    with open_raster(path) as src:
        if src.crs is None:
            raise InputError(f"{path}: the mask raster has no CRS; set it (gdal_edit.py -a_srs …).")
        dtype = np.dtype(src.dtypes[0])
        if dtype.kind == "f":
            raise InputError(f"{path}: the mask raster holds {dtype.name} values; a land-cover mask holds integer "
                             "classes (WorldCover's 10…100). Pass the class raster, not a probability or index.")
        cell = abs(src.transform.a * src.transform.e - src.transform.b * src.transform.d)
        local = plots.geometry.to_crs(src.crs)
        if not shapely.intersects(shapely.box(*src.bounds), shapely.union_all(shapely.envelope(local.values))):
            raise InputError(f"{path}: the mask ({src.crs.to_string()}, bounds {tuple(round(b, 4) for b in src.bounds)})"
                             " does not overlap the plots; pass the mask tile of this area.")
        frame = gpd.GeoDataFrame({"row": np.arange(len(local))}, geometry=local.values, crs=src.crs)
        table = exact_extract(src, frame, ["unique", "frac", "count"], include_cols=["row"], output="pandas",
                              strategy="raster-sequential")
    keep = np.asarray(sorted(set(int(c) for c in classes)), dtype=np.float64)
    share = np.zeros(len(plots))
    rows = table["row"].to_numpy()
    inside = np.array([float(np.sum(np.asarray(f)[np.isin(np.asarray(u, dtype=np.float64), keep)]))
                       if len(u) else 0.0 for u, f in zip(table["unique"], table["frac"], strict=True)])
    area_cells = shapely.area(local.values[rows]) / cell
    with np.errstate(invalid="ignore", divide="ignore"):
        share[rows] = np.clip(inside * table["count"].to_numpy() / area_cells, 0.0, 1.0)
    return np.nan_to_num(share)


def _vector_share(plots: gpd.GeoDataFrame, path: Path) -> np.ndarray:
    try:
        layer = gpd.read_file(path, engine="pyogrio") if path.suffix.lower() != ".parquet" else gpd.read_parquet(path)
    except Exception as exc:  # pyogrio/arrow raise many types for an unreadable file
        raise InputError(f"{path}: cannot read the mask layer ({exc}).") from exc
    if layer.crs is None:
        raise InputError(f"{path}: the mask layer has no CRS; set it (ogr2ogr -a_srs …).")
    geoms = layer.geometry.to_crs(plots.crs).values
    geoms = geoms[~shapely.is_empty(geoms) & shapely.is_valid(shapely.make_valid(geoms))]
    parts = shapely.get_parts(shapely.union_all(shapely.make_valid(geoms)))
    parts = parts[shapely.get_type_id(parts) >= 3]  # polygons only
    share = np.zeros(len(plots))
    if not parts.size:
        return share
    tree = shapely.STRtree(parts)
    target = plots.geometry.values
    p, m = tree.query(target, predicate="intersects")
    inside = shapely.area(shapely.intersection(target[p], parts[m]))
    np.add.at(share, p, inside)
    return np.clip(share / shapely.area(target), 0.0, 1.0)
