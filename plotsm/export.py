"""Export moisture joined to parcel geometries: GeoParquet 1.1 (cloud-optimised) or GeoPackage.

One row per (parcel, acquisition) with moisture: ``sql/export.sql`` gives the moisture, its flag, the
observation inputs and the acquisition time; the rows are joined to the stored parcel geometries, in the
parcels' own CRS, with the parcels' attributes as columns (an attribute whose name clashes with an export
column or with ``bbox`` gets an ``attr_`` prefix). ``is_current`` tells the parcels of the current set from
those a parcel-set update retired (``plotsm run --parcels-update replace``): their history is exported with
their last geometry and ``parcel_retired_utc``, never dropped.

The GeoParquet file is written for GIS at scale: GeoParquet 1.1 metadata with a ``bbox`` covering column
(struct xmin/ymin/xmax/ymax), ZSTD compression, and rows in Hilbert order of the parcels' bounding-box centres
(then by time) cut into row groups of :data:`DEFAULT_ROW_GROUP_SIZE` rows, so that a reader can skip the row
groups outside its window from the bbox column's statistics. Parcels with an empty geometry (null bbox) sort
first, so they share the first row group with located parcels: a row group of empty geometries only would have
no bbox statistics (that happens only with at least ``row_group_size`` such rows).

Both formats are written to a temporary file in the destination folder and renamed into place, so a reader
never sees a half-written file.
"""

from __future__ import annotations

import os
import warnings
from datetime import date as Date
from datetime import datetime
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from plotsm.atomic import atomic_path, writable_dir, write_gpkg
from plotsm.errors import DataWarning, UsageError, option
from plotsm.store import Store

ExportFormat = Literal["geoparquet", "gpkg"]
FORMATS: tuple[str, ...] = ("geoparquet", "gpkg")
Layout = Literal["long", "wide"]
#: ``long``: one row per (parcel, acquisition), with ``mv_std_pct``, the credible intervals ``mv_lo68_pct``,
#: ``mv_hi68_pct``, ``mv_lo95_pct``, ``mv_hi95_pct`` (15.87 %/84.13 % and 2.5 %/97.5 % posterior quantiles, vol.%)
#: and ``method``; ``wide``: one row per parcel, ``n_ok`` (the estimates it has), one ``mv_<acquisition_id>``
#: column per acquisition (in time order; NULL where there is no estimate), then one ``mv_std_<acquisition_id>``
#: column per acquisition, its posterior standard deviation, then likewise ``mv_lo68_<acquisition_id>``,
#: ``mv_hi68_<…>``, ``mv_lo95_<…>``, ``mv_hi95_<…>`` (NULL where unknown). Which inversion made each value
#: (``method``) is in the long layout only: it is the same for a whole acquisition but for the rare row the joint
#: inversion left single-date.
LAYOUTS: tuple[str, ...] = ("long", "wide")
#: Rows per Parquet row group: tens of thousands, below the 150,000 the GeoParquet distribution guide caps at.
DEFAULT_ROW_GROUP_SIZE = 50_000
#: Layer name inside an exported GeoPackage.
GPKG_LAYER = "moisture"
#: Attribute fields a GeoPackage layer can hold: SQLite's 2000 columns less the fid and the geometry (measured with
#: GDAL's GPKG driver through pyogrio: field 1,999 is refused with "Error adding field").
GPKG_MAX_FIELDS = 1998
_SUFFIXES = {"geoparquet": (".parquet", ".geoparquet"), "gpkg": (".gpkg",)}
#: The columns of the long layout the wide one pivots after ``mv_pct``, in this order (:func:`wide_frame`).
_WIDE_SPREADS = ("mv_std_pct", "mv_lo68_pct", "mv_hi68_pct", "mv_lo95_pct", "mv_hi95_pct")
_NULLABLE = {pa.float64(): pd.Float64Dtype(), pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype()}


#: The file an export writes by default, in the run's output folder, per format.
DEFAULT_TARGETS = {"geoparquet": "moisture.parquet", "gpkg": "moisture.gpkg"}


def default_target(out_dir: str | os.PathLike[str], format: ExportFormat = "geoparquet") -> Path:  # noqa: A002
    """Where an export of the run in ``out_dir`` goes by default: ``<out_dir>/moisture.parquet`` or ``.gpkg``."""
    if format not in DEFAULT_TARGETS:
        raise UsageError(f"{option('format')} {format!r}: expected {' or '.join(DEFAULT_TARGETS)}")
    return Path(out_dir) / DEFAULT_TARGETS[format]


def export_moisture(
    store_or_path: Store | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    format: ExportFormat = "geoparquet",  # noqa: A002 - the option's public name
    date: str | Date | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    layout: Layout = "long",
) -> Path:
    """Write moisture with geometries to ``out_path`` and return it.

    ``store_or_path``: an open :class:`~plotsm.store.Store`, or an output folder (or its ``plotsm.duckdb``),
    opened read-only. ``date``: a UTC date (``2024-04-06``) to export only that day's acquisitions; a date
    without acquisitions is a :class:`~plotsm.errors.UsageError` listing the available dates. ``layout``: see
    :data:`LAYOUTS` (the whole series as one attribute table per parcel, for GIS maps of each date).
    """
    out = Path(out_path)
    _check_target(out, format, row_group_size)
    if layout not in LAYOUTS:
        raise UsageError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}.")
    day = parse_date(date)
    if isinstance(store_or_path, Store):
        frame = moisture_frame(store_or_path, day)
    else:
        with Store(Path(store_or_path), read_only=True) as store:
            frame = moisture_frame(store, day)
    if layout == "wide":
        frame = wide_frame(frame)
    n_fields = frame.shape[1] - 1  # all but the geometry
    if format == "gpkg" and n_fields > GPKG_MAX_FIELDS:
        raise UsageError(f"{out}: the {layout} layout of this store has {n_fields} attribute columns (6 per "
                         f"acquisition: mv, std and the 4 interval bounds); a GeoPackage layer holds at most "
                         f"{GPKG_MAX_FIELDS} (SQLite's 2000-column limit). Export it as GeoParquet (--format "
                         "geoparquet, no such limit), or with --layout long.")
    writable_dir(out.parent, "--to")
    if format != "geoparquet":
        return write_gpkg(frame, out, GPKG_LAYER)
    with atomic_path(out) as tmp:
        frame.to_parquet(
            tmp, index=False, schema_version="1.1.0", write_covering_bbox=True,
            compression="zstd", row_group_size=row_group_size,
        )
    return out


def moisture_frame(store: Store, day: Date | None = None) -> gpd.GeoDataFrame:
    """The rows to export, in Hilbert order of the parcels then time, as a GeoDataFrame in the parcels' CRS."""
    rows = store.query("export", {"date": day}).to_pandas(types_mapper=_NULLABLE.get)
    if len(rows) == 0:
        dates = [str(d) for (d,) in store.sql(
            "SELECT DISTINCT CAST(a.datetime_utc AS DATE) AS d FROM moisture AS m "
            "JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id ORDER BY d"
        ).to_pandas().itertuples(index=False)]
        if not dates:
            raise UsageError(f"{store.path}: no moisture to export. Run plotsm on this --out folder first.")
        raise UsageError(f"no acquisition on {day}. Available dates (UTC): {', '.join(dates)}.")
    rows["datetime_utc"] = rows["datetime_utc"].dt.tz_localize("UTC")
    parcels = store.read_parcels()
    if len(parcels) == 0:
        raise UsageError(f"{store.path}: no parcels stored, so no geometries to export. Write the parcels first.")
    parcels.insert(1, "is_current", True)
    retired = store.read_retired_parcels()
    retired = retired[retired["parcel_id"].isin(rows["parcel_id"])]
    if len(retired):  # parcels that left the set keep their history, with their last geometry
        retired = retired.drop(columns=["retired_reason"]).rename(columns={"retired_utc": "parcel_retired_utc"})
        retired.insert(1, "is_current", False)
        parcels = gpd.GeoDataFrame(pd.concat([parcels, retired], ignore_index=True), crs=parcels.crs)
    parcels["_hilbert"] = hilbert_order(parcels.geometry)
    clash = [c for c in parcels.columns if (c in rows.columns or c == "bbox") and c != "parcel_id"]
    parcels = parcels.rename(columns={c: f"attr_{c}" for c in clash})
    merged = rows.merge(parcels, on="parcel_id", how="inner", validate="many_to_one")
    if len(merged) < len(rows):
        orphans = rows.loc[~rows["parcel_id"].isin(parcels["parcel_id"]), "parcel_id"].unique()
        warnings.warn(
            f"{len(rows) - len(merged)} moisture row(s) of {len(orphans)} parcel(s) not in the stored parcel set "
            f"(e.g. {', '.join(map(str, orphans[:3]))}) are not exported.",
            DataWarning,
            stacklevel=3,
        )
    merged = merged.sort_values(["_hilbert", "parcel_id", "datetime_utc", "acquisition_id"], kind="stable")
    merged = merged.drop(columns="_hilbert").reset_index(drop=True)
    frame = gpd.GeoDataFrame(merged, geometry="geometry", crs=parcels.crs)
    frame.attrs["per_acquisition"] = [c for c in rows.columns if c != "parcel_id"]  # the rest is per parcel
    return frame


def hilbert_order(geoms: gpd.GeoSeries) -> np.ndarray:
    """Hilbert distance of each geometry's bounding-box centre over the extent; -1 (first) for empty ones."""
    order = np.full(len(geoms), -1, dtype=np.int64)
    solid = ~(geoms.is_empty | geoms.isna()).to_numpy()
    if solid.any():
        order[solid] = geoms[solid].hilbert_distance().to_numpy(dtype=np.int64)
    return order


def _check_target(out: Path, format: str, row_group_size: int) -> None:  # noqa: A002
    if format not in FORMATS:
        raise UsageError(f"export format {format!r}: expected one of {', '.join(FORMATS)}.")
    other = next((f for f, suffixes in _SUFFIXES.items() if f != format and out.suffix.lower() in suffixes), None)
    if other is not None:
        raise UsageError(f"{out}: a {out.suffix} name for format {format!r}. Pass format={other!r} or another name.")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder. Pass a file name such as {out / ('moisture' + _SUFFIXES[format][0])}.")
    if row_group_size < 1:
        raise UsageError(f"row_group_size {row_group_size}: must be at least 1.")


def parse_date(value: str | Date | None) -> Date | None:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, Date):
        return value
    try:
        return Date.fromisoformat(str(value))
    except ValueError:
        raise UsageError(f"--date {value!r}: expected an ISO date such as 2024-04-06.") from None


__all__ = ["DEFAULT_ROW_GROUP_SIZE", "FORMATS", "GPKG_LAYER", "export_moisture", "hilbert_order", "moisture_frame", "parse_date"]


def wide_frame(long: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One row per parcel of :func:`moisture_frame`'s frame: its geometry and attributes, ``n_ok``, then one
    ``mv_<acquisition_id>`` column per acquisition in time order (NULL without an estimate), then the
    ``mv_std_<acquisition_id>`` columns of their uncertainties and the ``mv_lo68_``, ``mv_hi68_``, ``mv_lo95_``,
    ``mv_hi95_<acquisition_id>`` columns of their credible intervals (:data:`LAYOUTS`)."""
    order = (long[["acquisition_id", "datetime_utc"]].drop_duplicates()
             .sort_values(["datetime_utc", "acquisition_id"])["acquisition_id"].tolist())
    values = long.pivot(index="parcel_id", columns="acquisition_id", values="mv_pct").reindex(columns=order)
    values.columns = [f"mv_{a}" for a in order]
    spreads = []
    for column in _WIDE_SPREADS:  # mv_std_pct → mv_std_<acquisition_id>, mv_lo68_pct → mv_lo68_<…>, …
        spread = long.pivot(index="parcel_id", columns="acquisition_id", values=column).reindex(columns=order)
        spread.columns = [f"{column.removesuffix('_pct')}_{a}" for a in order]
        spreads.append(spread)
    per_acquisition = set(long.attrs["per_acquisition"])  # the columns of sql/export.sql (moisture_frame)
    keep = ["parcel_id", *[c for c in long.columns if c not in per_acquisition | {"parcel_id", "geometry"}],
            "geometry"]
    parcels = long[keep].drop_duplicates("parcel_id").set_index("parcel_id")
    wide = parcels.join(values.notna().sum(axis=1).rename("n_ok")).join([values, *spreads]).reset_index()
    wide = wide[[c for c in wide.columns if c != "geometry"] + ["geometry"]]
    return gpd.GeoDataFrame(wide, geometry="geometry", crs=long.crs)
