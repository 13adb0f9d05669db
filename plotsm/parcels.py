"""Read, validate, repair and reproject parcels.

:func:`read_parcels` is the boundary where parcel files are normalised once: any of shapefile, GeoPackage,
GeoJSON (pyogrio) or GeoParquet in, one :class:`Parcels` out, whose GeoDataFrame has a ``parcel_id`` column
(int64 or string, as in the file), the user's attribute columns, and a valid (Multi)Polygon geometry per row.
Problems that would give wrong answers (no CRS, duplicate or null ids, nothing to work on) raise
:class:`~plotsm.errors.InputError` with the fix; what can be repaired is repaired and counted in the report.
Nothing here prints: the CLI prints :class:`ParcelsReport`.

Parcels are reprojected to each raster's CRS (:func:`to_crs`), never the reverse. :func:`overlapping_parcels`
finds parcels that overlap, which lose pixels under the centre rule; reading does not call it (the run does,
when that rule is used).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from plotsm.errors import GeometryWarning, InputError, ParcelsWarning, UsageError

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
POLYGONAL = ("Polygon", "MultiPolygon")
_EMPTY = shapely.Polygon()


@dataclass
class ParcelsReport:
    """What reading did to the parcels; ``messages`` are one-line, printable notes."""

    n_read: int = 0
    n_repaired: int = 0
    n_dropped_non_polygon: int = 0
    n_empty: int = 0
    id_generated: bool = False
    #: id-like fields (by name) passed over when choosing the id field, with why: [("ID_PARCEL", "3 duplicated …")]
    id_skipped: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class Parcels:
    """Parcels ready for the zonal engine: ``gdf`` has ``parcel_id``, the user's attributes and ``geometry``."""

    gdf: gpd.GeoDataFrame
    id_field: str | None
    crs: CRS
    report: ParcelsReport

    def __len__(self) -> int:
        return len(self.gdf)


# ------------------------------------------------------------------------------------------------ reading


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
                    f"{path.name}: {len(layers)} layers, read {layer!r}; choose another with --parcels-layer "
                    f"({', '.join(str(n) for n, _ in layers)})."
                )
            elif len(layers) == 1:
                layer = str(layers[0][0])
        elif layer not in {str(n) for n, _ in layers}:
            names = ", ".join(str(n) for n, _ in layers) or "none"
            raise InputError(f"{path}: no layer {layer!r}. Layers in the file: {names}. Pass one to --parcels-layer.")
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
            raise UsageError(f"--parcels-crs {parcels_crs!r}: not a CRS ({exc}). Pass e.g. EPSG:2154.") from exc
    if gdf.crs is None:
        if wanted is not None:
            return gdf.set_crs(wanted)
        x0, y0, x1, y1 = gdf.total_bounds
        lonlat = -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
        hint = ("the coordinates look like longitude/latitude: pass --parcels-crs EPSG:4326" if lonlat else
                "pass --parcels-crs EPSG:xxxx with the code of the CRS of the coordinates (e.g. EPSG:2154, EPSG:32631)")
        raise InputError(f"{path}: no CRS (.prj missing or empty). Add one to the file, or {hint}.")
    if wanted is not None and not CRS.from_user_input(gdf.crs).equals(wanted, ignore_axis_order=True):
        raise UsageError(
            f"{path}: the file declares {gdf.crs.to_string()}, --parcels-crs says {wanted.to_string()}. "
            "--parcels-crs is for files without a CRS: drop it, or fix the file's CRS."
        )
    return gdf


# --------------------------------------------------------------------------------------------------- ids


def _is_id_name(name: str) -> bool:
    """'id', 'ID_PARCEL', 'parcel_id', 'fid', 'objectid', 'idParcel' (not 'humidity' nor 'width')."""
    low = name.lower()
    return bool(re.search(r"(^|[^a-z])id([^a-z]|$)", low) or low.endswith("id") or re.match(r"^id[A-Z]", name))


def _id_kind_ok(values: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(values) or pd.api.types.is_string_dtype(values)


def _is_integral_float(values: pd.Series) -> bool:
    """Floats that are integers where present: an integer field with nulls, as pyogrio reads it (1.0, NaN, 3.0)."""
    if not pd.api.types.is_float_dtype(values):
        return False
    present = values.dropna().to_numpy()
    return bool(present.size and np.all(np.mod(present, 1) == 0))


def _is_unique_key(values: pd.Series) -> bool:
    return bool(values.notna().all() and values.is_unique)


def _show(value: Any) -> str:
    """A value as the user wrote it: 7, 'A12' (not np.int64(7))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _key_defects(values: pd.Series) -> dict[str, str]:
    """Why ``values`` are not a unique key, nulls first: {"null": "2 null value(s) (e.g. row 4)", "duplicated": …}."""
    defects: dict[str, str] = {}
    nulls = values.isna()
    if nulls.any():
        defects["null"] = f"{int(nulls.sum())} null value(s) (e.g. row {int(np.flatnonzero(nulls)[0])})"
    present = values[~nulls]
    dup = present.duplicated(keep=False)
    if dup.any():
        defects["duplicated"] = (
            f"{present[dup].nunique()} duplicated value(s) over {int(dup.sum())} rows (e.g. {_show(present[dup].iloc[0])})"
        )
    return defects


_ID_FIXES = {
    "null": "Fill them, or pass another unique field to --id-field.",
    "duplicated": "Make the ids unique, or pass another field to --id-field.",
}


def _check_ids(values: pd.Series, name: str, path: Path) -> None:
    defects = _key_defects(values)
    if defects:
        kind, text = next(iter(defects.items()))  # nulls first
        raise InputError(f"{path}: id field {name!r} has {text}. {_ID_FIXES[kind]}")


def _skipped_message(path: Path, skipped: list[tuple[str, str]], source: str, nulls: bool) -> str:
    """One line saying which id-like fields were passed over, why, what was used instead and how to choose."""
    fix = "unique and non-null" if nulls else "unique"
    if len(skipped) == 1:
        name, why = skipped[0]
        what, todo = f"field {name!r} looks like the parcel id but has {why}", f"Make {name} {fix}"
    else:
        listed = ", ".join(f"{name!r} ({why})" for name, why in skipped)
        what, todo = f"fields {listed} look like the parcel id but none is a unique key", f"Make one of them {fix}"
    return f"{path.name}: {what}; parcel ids come from {source} instead. {todo} or pass --id-field FIELD to choose."


def _normalise_ids(values: pd.Series, name: str, path: Path) -> pd.Series:
    """int64 for integers (and integral floats), strings otherwise."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(values):
        if np.all(np.mod(values.to_numpy(), 1) == 0):
            return values.astype(np.int64)
        raise InputError(f"{path}: id field {name!r} holds non-integer numbers. Pass a field of integers or text to --id-field.")
    return values.astype(str)


def _choose_id(
    gdf: gpd.GeoDataFrame, path: Path, id_field: str | None, fids: pd.Series | None, report: ParcelsReport
) -> tuple[str | None, pd.Series]:
    attrs = [c for c in gdf.columns if c != gdf.geometry.name]
    columns = {c: gdf[c].reset_index(drop=True) for c in attrs}
    if fids is not None and fids.name not in columns:
        columns[str(fids.name)] = fids
    if id_field is not None:
        if id_field not in columns:
            raise InputError(
                f"{path}: no field {id_field!r}. Available fields: {', '.join(columns) or 'none'}. Pass one to --id-field."
            )
        _check_ids(columns[id_field], id_field, path)
        return id_field, _normalise_ids(columns[id_field], id_field, path)
    # an integer field with nulls is read as floats: still id-like, so that its nulls are reported, not hidden
    named = [c for c in attrs if _is_id_name(c) and (_id_kind_ok(gdf[c]) or _is_integral_float(gdf[c]))]
    typed = [c for c in attrs if _id_kind_ok(gdf[c]) and c not in named]
    fid_names = [str(fids.name)] if fids is not None and fids.name not in attrs else []
    chosen: str | None = None
    for name in [*named, *typed, *fid_names]:
        if _is_unique_key(columns[name]):
            chosen = name
            break
        if name in named:  # a natural id abandoned: never silently (report.id_skipped, a message, a warning)
            report.id_skipped.append((name, " and ".join(_key_defects(columns[name]).values())))
    natural = next((c for c in typed if pd.api.types.is_integer_dtype(gdf[c])), None) if not named else None
    if natural is not None and chosen != natural:
        # no id-like name: the first integer field (e.g. a segmentation's 'label') was the natural id; say why
        # another field, the feature ids or generated numbers are used instead
        report.id_skipped.append((natural, " and ".join(_key_defects(columns[natural]).values())))
    if chosen is not None:
        ids = _normalise_ids(columns[chosen], chosen, path)
        report.messages.append(f"{path.name}: parcel ids from field {chosen!r} (pass --id-field to choose another).")
        source = f"the file's feature ids ({chosen!r})" if chosen in fid_names else f"field {chosen!r}"
    else:
        ids = pd.Series(np.arange(1, len(gdf) + 1, dtype=np.int64))
        report.id_generated = True
        report.messages.append(f"{path.name}: no unique id field; parcel ids generated 1..{len(gdf)} in file order.")
        source = f"numbers 1..{len(gdf)} generated in file order"
    if report.id_skipped:
        nulls = any(columns[name].isna().any() for name, _ in report.id_skipped)
        msg = _skipped_message(path, report.id_skipped, source, nulls)
        report.messages.append(msg)
        warnings.warn(msg, ParcelsWarning, stacklevel=3)
    return chosen, ids


# --------------------------------------------------------------------------------------------- geometries


def _polygonal_part(geom: Any) -> Any:
    """Polygonal part of a geometry (union of the polygons of a collection); None when it has none."""
    if geom.geom_type in POLYGONAL:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in POLYGONAL]
    if not parts:
        return None
    union = shapely.union_all(parts)
    return union if union.geom_type in POLYGONAL else None


def _repair(gdf: gpd.GeoDataFrame, path: Path, report: ParcelsReport) -> gpd.GeoDataFrame:
    """Make geometries valid (Multi)Polygons; keep empty ones; drop non-polygons with a warning."""
    geoms = shapely.force_2d(np.asarray(gdf.geometry.to_numpy(), dtype=object))
    missing = shapely.is_missing(geoms)
    geoms[missing] = _EMPTY
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        repaired = shapely.make_valid(geoms[invalid])
        # a polygon that collapses to lines or points is still a parcel: kept as empty (n_valid = 0)
        geoms[invalid] = [_polygonal_part(g) or _EMPTY for g in repaired]
        report.n_repaired = int(invalid.sum())
        report.messages.append(f"{path.name}: {report.n_repaired} invalid geometr(y/ies) repaired (make_valid).")
    kinds = shapely.get_type_id(geoms)
    collections = np.flatnonzero(kinds == shapely.GeometryType.GEOMETRYCOLLECTION)
    for i in collections:  # valid collections in the file: keep their polygons
        part = _polygonal_part(geoms[i]) if not shapely.is_empty(geoms[i]) else _EMPTY
        geoms[i] = part if part is not None else geoms[i]
    polygonal = np.isin(shapely.get_type_id(geoms), [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    empty = shapely.is_empty(geoms)
    drop = ~polygonal & ~empty
    if not (polygonal & ~empty).any():
        names = np.where(empty, "empty", [g.geom_type for g in geoms])
        found = pd.Series(names).value_counts()
        kinds_text = ", ".join(f"{k} ×{v}" for k, v in found.items())
        raise InputError(f"{path}: no polygons (found {kinds_text}). Parcels must be Polygon or MultiPolygon features.")
    if drop.any():
        report.n_dropped_non_polygon = int(drop.sum())
        kinds_text = ", ".join(sorted({g.geom_type for g in geoms[drop]}))
        msg = f"{path.name}: dropped {report.n_dropped_non_polygon} non-polygon feature(s) ({kinds_text})."
        report.messages.append(msg)
        warnings.warn(msg, GeometryWarning, stacklevel=3)
    geoms[empty] = _EMPTY
    report.n_empty = int(empty.sum())
    if report.n_empty:
        report.messages.append(f"{path.name}: {report.n_empty} parcel(s) without geometry kept (they get n_valid = 0).")
    out = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))
    return out.loc[~drop].reset_index(drop=True)


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
    report.n_read = len(gdf)
    if len(gdf) == 0:
        raise InputError(f"{path}: the layer is empty (0 features). Pass a file with parcels (or another --parcels-layer).")
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


# ----------------------------------------------------------------------------------------- reprojection


def to_crs(parcels: Parcels | gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Parcels in ``crs`` (the raster's: parcels are reprojected, never the raster); unchanged if already in it."""
    gdf = parcels.gdf if isinstance(parcels, Parcels) else parcels
    if gdf.crs is None:
        raise InputError("parcels have no CRS. Read them with read_parcels (pass --parcels-crs for files without one).")
    target = CRS.from_user_input(crs)
    return gdf if CRS.from_user_input(gdf.crs).equals(target, ignore_axis_order=True) else gdf.to_crs(target)


def inner_buffer(gdf: gpd.GeoDataFrame, metres: float) -> gpd.GeoDataFrame:
    """Shrink every parcel by ``|metres|`` (an inner, i.e. negative, buffer), e.g. to drop mixed edge pixels.

    Geographic CRS: buffered in the local UTM zone (``estimate_utm_crs``) and projected back. Parcels that
    vanish become empty geometries and are kept, so they get ``n_valid = 0``.
    """
    distance = abs(float(metres))
    if distance == 0 or len(gdf) == 0:
        return gdf.copy()
    if gdf.crs is None:
        raise InputError("parcels have no CRS: cannot buffer in metres. Pass --parcels-crs.")
    crs = CRS.from_user_input(gdf.crs)
    work = gdf.to_crs(gdf.estimate_utm_crs()) if crs.is_geographic else gdf
    unit = CRS.from_user_input(work.crs).axis_info[0].unit_conversion_factor or 1.0
    shrunk = shapely.buffer(work.geometry.to_numpy(), -distance / unit)
    shrunk = np.where(shapely.is_empty(shrunk), _EMPTY, shrunk)
    out = gdf.copy()
    geoms = gpd.GeoSeries(shrunk, index=gdf.index, crs=work.crs)
    out = out.set_geometry(geoms.to_crs(crs) if crs.is_geographic else geoms)
    return out


# ------------------------------------------------------------------------------------------------ overlaps

#: Parcels queried against the spatial index at a time: bounds the memory of the candidate pairs (~8 per parcel
#: in a tessellation) on maps of millions of parcels; the work inside a block is vectorised.
OVERLAP_BLOCK = 50_000


@dataclass(frozen=True)
class OverlapReport:
    """Pairs of parcels whose interiors overlap by more than ``min_overlap_m2`` (see :func:`overlapping_parcels`).

    ``area_m2`` sums the overlap of every pair (an area shared by three parcels counts in three pairs);
    ``examples`` are the (up to 5) largest overlaps as (id of the earlier parcel, id of the later one, m²).
    """

    n_pairs: int
    n_parcels: int
    area_m2: float
    examples: list[tuple[Any, Any, float]]
    min_overlap_m2: float

    def __bool__(self) -> bool:
        return self.n_pairs > 0

    def message(self, source: str | None = None) -> str:
        """One printable line; ``source`` (e.g. the file name) is put in front."""
        head = f"{source}: " if source else ""
        if not self.n_pairs:
            return f"{head}no parcels overlap (by more than {_m2(self.min_overlap_m2)} m²)."
        a, b, area = self.examples[0]
        pairs = "1 pair" if self.n_pairs == 1 else f"{self.n_pairs:,} pairs"
        return (
            f"{head}{self.n_parcels:,} parcels overlap another ({pairs}, {_m2(self.area_m2)} m² in all; "
            f"e.g. {_show(a)} and {_show(b)} share {_m2(area)} m²): under --rule center each pixel goes to one "
            "parcel, the later one in the file, so the other loses it. Fix the geometries or pass --rule coverage."
        )


def _m2(area: float) -> str:
    return f"{area:,.0f}" if area >= 10 else f"{area:.1f}"


def _interior_pairs(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (i < j) of the pairs of geometries whose interiors intersect; empty ones are ignored.

    Bounding boxes from an STRtree, then one DE-9IM test per candidate pair ("T********": the interiors meet),
    which drops pairs that only touch; identical geometries pass it. Prepared geometries make it ~2× faster
    (GEOS RelateNG); they are released afterwards, so the caller's geometries are left as they were.
    """
    tree = shapely.STRtree(geoms)
    newly = ~shapely.is_prepared(geoms) & ~shapely.is_missing(geoms)
    shapely.prepare(geoms[newly])
    try:
        found_i, found_j = [np.empty(0, np.intp)], [np.empty(0, np.intp)]
        for start in range(0, len(geoms), OVERLAP_BLOCK):
            i, j = tree.query(geoms[start:start + OVERLAP_BLOCK])
            i = i + start
            keep = i < j
            i, j = i[keep], j[keep]
            meet = shapely.relate_pattern(geoms[i], geoms[j], "T********")
            found_i.append(i[meet])
            found_j.append(j[meet])
    finally:
        shapely.destroy_prepared(geoms[newly])
    return np.concatenate(found_i), np.concatenate(found_j)


def overlapping_parcels(parcels: Parcels | gpd.GeoDataFrame, min_overlap_m2: float = 1.0) -> OverlapReport:
    """Pairs of parcels whose interiors overlap by more than ``min_overlap_m2`` square metres.

    Under the centre rule a pixel holds one label, the later parcel's, so the earlier parcel of an overlapping
    pair loses the shared pixels (a duplicated polygon gets none): the caller reports this when that rule is
    used. Pairs that only touch are not overlaps; identical geometries are. Empty geometries are ignored.
    Areas are in m²: in a geographic CRS the overlaps are projected to the local UTM zone
    (``estimate_utm_crs``); the pairs themselves are found in the parcels' CRS. Ids are the ``parcel_id``
    column, else the index. Geometries must be valid, as :func:`read_parcels` makes them.
    """
    gdf = parcels.gdf if isinstance(parcels, Parcels) else parcels
    if gdf.crs is None:
        raise InputError("parcels have no CRS: cannot measure overlaps in m². Pass --parcels-crs.")
    geoms = np.asarray(gdf.geometry.to_numpy(), dtype=object)
    i, j = _interior_pairs(geoms)
    shared = shapely.intersection(geoms[i], geoms[j])
    crs = CRS.from_user_input(gdf.crs)
    if crs.is_geographic:
        area = gpd.GeoSeries(shared, crs=crs).to_crs(gdf.estimate_utm_crs()).area.to_numpy()
    else:
        area = shapely.area(shared) * (crs.axis_info[0].unit_conversion_factor or 1.0) ** 2
    keep = area > min_overlap_m2
    i, j, area = i[keep], j[keep], area[keep]
    ids = gdf["parcel_id"].to_numpy() if "parcel_id" in gdf.columns else gdf.index.to_numpy()
    top = np.lexsort((j, i, -area))[:5]  # largest first, then file order
    examples = [(_scalar(ids[i[k]]), _scalar(ids[j[k]]), float(area[k])) for k in top]
    return OverlapReport(
        n_pairs=int(i.size),
        n_parcels=int(np.union1d(i, j).size),
        area_m2=float(area.sum()),
        examples=examples,
        min_overlap_m2=float(min_overlap_m2),
    )


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
