"""Reading parcel files (shapefile, GeoPackage, GeoJSON, GeoParquet) or taking a GeoDataFrame, normalised once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pyogrio.errors
from pyproj import CRS
from pyproj.exceptions import CRSError

from plotsm.errors import InputError, UsageError, option
from plotsm.parcels.geometry import _repair
from plotsm.parcels.ids import _choose_id
from plotsm.parcels.model import PARQUET_SUFFIXES, Parcels, ParcelsReport


def _read_vector(path: Path, layer: str | None, report: ParcelsReport) -> tuple[gpd.GeoDataFrame, pd.Series | None]:
    """GeoDataFrame of a pyogrio-readable file, and its feature ids named after their column (GeoPackage) or None.

    Feature ids are not kept as an attribute (a GeoPackage written back would clash with its own FID column);
    they serve as parcel ids when asked for, or when no attribute qualifies.
    """
    try:
        layers = pyogrio.list_layers(path)
        if layer is None:
            if len(layers) > 1:
                polygonal = [name for name, kind in layers if kind and "Polygon" in str(kind)]
                layer = str((polygonal or [layers[0][0]])[0])
                report.messages.append(
                    f"{path.name}: {len(layers)} layers, read {layer!r}; choose another with {option('layer')} "
                    f"({', '.join(str(n) for n, _ in layers)})."
                )
            elif len(layers) == 1:
                layer = str(layers[0][0])
        elif layer not in {str(n) for n, _ in layers}:
            names = ", ".join(str(n) for n, _ in layers) or "none"
            raise InputError(f"{path}: no layer {layer!r}. Layers in the file: {names}. Pass one to {option('layer')}.")
        info = pyogrio.read_info(path, layer=layer)
        fid = info.get("fid_column") or None
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio", fid_as_index=fid is not None)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        raise InputError(f"{path}: cannot read parcels ({exc}). Pass a shapefile, GeoPackage, GeoJSON or GeoParquet.") from exc
    fids = pd.Series(gdf.index.to_numpy(), name=fid) if fid is not None else None
    return gdf.reset_index(drop=True), fids


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: cannot read GeoParquet ({exc}). Write it with GeoPandas to_parquet or GDAL.") from exc


def _set_crs(gdf: gpd.GeoDataFrame, path: Path, parcels_crs: str | None) -> gpd.GeoDataFrame:
    wanted = None
    if parcels_crs is not None:
        try:
            wanted = CRS.from_user_input(parcels_crs)
        except CRSError as exc:
            raise UsageError(f"{option('parcels_crs')} {parcels_crs!r}: not a CRS ({exc}). Pass e.g. EPSG:2154.") from exc
    if gdf.crs is None:
        if wanted is not None:
            return gdf.set_crs(wanted)
        x0, y0, x1, y1 = gdf.total_bounds
        lonlat = -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
        hint = (f"the coordinates look like longitude/latitude: pass {option('parcels_crs', 'EPSG:4326')}" if lonlat else
                f"pass {option('parcels_crs', 'EPSG:xxxx')} with the code of the CRS of the coordinates (e.g. EPSG:2154, EPSG:32631)")
        raise InputError(f"{path}: no CRS (.prj missing or empty). Add one to the file, or {hint}.")
    if wanted is not None and not CRS.from_user_input(gdf.crs).equals(wanted, ignore_axis_order=True):
        raise UsageError(
            f"{path}: the file declares {gdf.crs.to_string()}, {option('parcels_crs')} says {wanted.to_string()}. "
            f"{option('parcels_crs')} is for files without a CRS: drop it, or fix the file's CRS."
        )
    return gdf




def read_parcels(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = None,
    parcels_crs: str | None = None,
    layer: str | None = None,
) -> Parcels:
    """Read parcels from a shapefile, GeoPackage, GeoJSON or GeoParquet file.

    ``id_field``: the field of unique, non-null parcel ids. Default: the first id-like field that is unique and
    non-null (a name such as ``id``, ``ID_PARCEL`` or ``parcel_id``; then any integer or text field), then a
    GeoPackage's feature ids, else ids 1..N generated in file order (``report.id_generated``). Id-like fields
    passed over because of duplicates or nulls are listed in ``report.id_skipped`` and said in a message and a
    :class:`~plotsm.errors.ParcelsWarning`.
    ``parcels_crs``: the CRS of a file that has none. ``layer``: the layer of a multi-layer file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: parcels file not found. Pass a shapefile, GeoPackage, GeoJSON or GeoParquet.")
    report = ParcelsReport()
    if path.suffix.lower() in PARQUET_SUFFIXES:
        gdf, fids = _read_parquet(path).reset_index(drop=True), None
    else:
        gdf, fids = _read_vector(path, layer, report)
    return _normalise(gdf, path, fids, report, id_field, parcels_crs)


def as_parcels(gdf: gpd.GeoDataFrame, *, id_field: str | None = None, crs: Any = None,
               name: str = "parcels") -> Parcels:
    """Parcels from a GeoDataFrame already in memory (a notebook's), normalised as :func:`read_parcels` normalises
    a file: ``id_field`` (default: the first unique id-like column, else ids 1..N), ``crs`` for a frame without
    one, geometries repaired. ``name`` is how messages name the frame. The frame is not modified."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{name}: expected a GeoDataFrame, got {type(gdf).__name__}. Build one with "
                         "geopandas.GeoDataFrame(…, geometry=…, crs=…) or read a file with plotsm.read_parcels.")
    return _normalise(gdf.copy().reset_index(drop=True), Path(name), None, ParcelsReport(), id_field,
                      None if crs is None else str(crs))


def _normalise(gdf: gpd.GeoDataFrame, path: Path, fids: pd.Series | None, report: ParcelsReport,
               id_field: str | None, parcels_crs: str | None) -> Parcels:
    """The one normalisation of parcels, from a file or a frame: CRS, geometry column, ids, repairs."""
    report.n_read = len(gdf)
    if len(gdf) == 0:
        raise InputError(f"{path}: the layer is empty (0 features). Pass a file with parcels (or another {option('layer')}).")
    gdf = _set_crs(gdf, path, parcels_crs)
    if gdf.geometry.name != "geometry":
        if "geometry" in gdf.columns:
            gdf = gdf.rename(columns={"geometry": "geometry_attr"})
        gdf = gdf.rename_geometry("geometry")
    chosen, ids = _choose_id(gdf, path, id_field, fids, report)
    if "parcel_id" in gdf.columns and chosen != "parcel_id":
        gdf = gdf.rename(columns={"parcel_id": "parcel_id_orig"})
        report.messages.append(f"{path.name}: field 'parcel_id' is not the id field; renamed to 'parcel_id_orig'.")
    gdf = gdf.drop(columns=[c for c in ("parcel_id",) if c in gdf.columns])
    gdf.insert(0, "parcel_id", ids.to_numpy())
    gdf = _repair(gdf.reset_index(drop=True), path, report)
    return Parcels(gdf=gdf, id_field=chosen, crs=CRS.from_user_input(gdf.crs), report=report)
