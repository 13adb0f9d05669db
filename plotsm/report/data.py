"""What the HTML report shows, read from a run's store and packed small.

Everything the page needs travels inside the file: parcel outlines simplified for display and quantised to
integer coordinates, and per acquisition and parcel the moisture (0.1 vol.%), its status, NDVI, σ⁰ (dB), the
posterior standard deviation of the moisture (0.1 vol.%, up to 25.4) and the inversion that made it (single or
temporal), each as a little-endian typed array in base64 (2 + 1 + 1 + 2 + 1 + 1 bytes per parcel and date, a third
more in base64). When some row has a credible interval (``mv_lo68_pct``, ``mv_hi68_pct``: the posterior's
equal-tailed 68 % interval), two more bytes: its bounds as their distances below and above the moisture shipped
(both in 0.1 vol.%, up to 25.4, 255 = none), so the page recovers each bound rounded to 0.1 vol.% exactly; a row
whose interval does not straddle its moisture or reaches further than 25.4 vol.% from it has none on the page (it
shows ± 1 std, like rows of older versions). The 95 % bounds are not shipped: the page does not show them, and
they would add another 0.8 MB per byte at 20,000 parcels × 30 dates. The
statistics per date (counts per status, quartiles) are computed here on every parcel, so they stay exact when the
map shows a sample.

**Size.** 20,000 parcels of about ten vertices after simplification and 30 dates make about 6 MB. Past
``max_bytes`` (10 MB) the map and the per-parcel series show an even sample of the parcels (every k-th in Hilbert
order of their centres, so the sample covers the area evenly), and the page says so; the per-date statistics
still cover them all.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from plotsm.errors import UsageError
from plotsm.export import hilbert_order
from plotsm.store import Store

#: The statuses of the moisture table, in the order of their codes in the page (255 = no row for the parcel).
STATUSES = ("ok", "ndvi_above_max", "slope_above_max", "too_few_pixels", "no_data", "outside_domain")
#: The inversions of the moisture table's ``method``, in the order of their codes in the page (255 = none).
METHODS = ("single", "temporal")
#: Default size limit of the report file [D]: opens quickly in any current browser and is easy to mail.
MAX_BYTES = 10_000_000
#: Screen pixels across the whole area the outlines are simplified for (sub-pixel at the full view; zooming
#: 4× still shows no visible simplification).
DISPLAY_PX = 4_000
#: The credible intervals the page shows, as (lower, upper) columns of the moisture table, each shipped as the
#: ``lo<level>`` and ``hi<level>`` arrays (see the module docstring).
INTERVALS = {"68": ("mv_lo68_pct", "mv_hi68_pct")}


@dataclass
class ReportData:
    """The report's content: ``page`` (JSON-able, embedded in the HTML) and what was left out, for the CLI."""

    page: dict[str, Any]
    n_parcels: int
    n_shown: int
    n_dates: int
    notes: list[str] = field(default_factory=list)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def _dates(store: Store, date_from: str | None, date_to: str | None) -> pd.DataFrame:
    acq = store.sql("SELECT acquisition_id, datetime_utc, platform, orbit_direction, relative_orbit, apriori, "
                    "apriori_reason, network, inputs, settings FROM acquisitions ORDER BY datetime_utc, "
                    "acquisition_id").to_pandas()
    if not len(acq):
        raise UsageError(f"{store.path}: no acquisition stored. Run plotsm on this --out folder first.")
    day = acq["datetime_utc"].dt.strftime("%Y-%m-%d")
    keep = np.ones(len(acq), dtype=bool)
    if date_from:
        keep &= (day >= date_from).to_numpy()
    if date_to:
        keep &= (day <= date_to).to_numpy()
    if not keep.any():
        raise UsageError(f"no acquisition between {date_from or 'the first'} and {date_to or 'the last'}; stored: "
                         f"{day.iloc[0]} to {day.iloc[-1]} ({len(acq)} acquisitions).")
    return acq[keep].reset_index(drop=True)


def _display_geometry(parcels: gpd.GeoDataFrame) -> tuple[gpd.GeoSeries, float]:
    """Outlines in a metric CRS (the parcels' own if projected, else their UTM zone) and the simplification
    tolerance in metres."""
    geoms = parcels.geometry
    if geoms.crs is None or not geoms.crs.is_projected:
        geoms = geoms.to_crs(parcels.estimate_utm_crs())
    x0, y0, x1, y1 = geoms.total_bounds
    tolerance = max(float(max(x1 - x0, y1 - y0)) / DISPLAY_PX, 0.5)
    return geoms, tolerance


def _outlines(geoms: gpd.GeoSeries, tolerance: float) -> dict[str, Any]:
    """Rings of the simplified outlines, quantised to ``tolerance``/2 and packed (see the module docstring)."""
    simple = shapely.simplify(geoms.values, tolerance, preserve_topology=True)
    x0, _, _, y1 = geoms.total_bounds
    quantum = tolerance / 2.0
    parts = shapely.get_parts(simple)
    part_owner = np.repeat(np.arange(len(simple)), shapely.get_num_geometries(simple))
    polys = shapely.get_type_id(parts) == 3
    parts, part_owner = parts[polys], part_owner[polys]
    rings = shapely.get_rings(parts)
    ring_owner = np.repeat(part_owner, 1 + shapely.get_num_interior_rings(parts))
    coords = shapely.get_coordinates(rings)
    counts = shapely.get_num_coordinates(rings)
    q = np.empty_like(coords, dtype=np.int32)
    q[:, 0] = np.round((coords[:, 0] - x0) / quantum)
    q[:, 1] = np.round((y1 - coords[:, 1]) / quantum)  # screen y grows downwards
    ring_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    parcel_ring = np.searchsorted(ring_owner, np.arange(len(simple) + 1)).astype(np.int32)
    inside = shapely.point_on_surface(geoms.values)
    label = np.empty((len(geoms), 2), dtype=np.float64)
    label[:, 0] = (shapely.get_x(inside) - x0) / quantum
    label[:, 1] = (y1 - shapely.get_y(inside)) / quantum
    bx0, by0, bx1, by1 = geoms.total_bounds
    return {"coords": _b64(q.ravel()), "ring_start": _b64(ring_start), "parcel_ring": _b64(parcel_ring),
            "label": _b64(label.astype(np.float32).ravel()), "quantum_m": quantum,
            "width": float((bx1 - bx0) / quantum), "height": float((by1 - by0) / quantum),
            "n_vertices": int(coords.shape[0])}


def _estimate_bytes(n_parcels: int, n_vertices: int, n_dates: int, n_intervals: int = 0) -> int:
    return int((n_vertices * 8 + n_parcels * (4 + 8 + 24 + n_dates * (8 + 2 * n_intervals))) * 4 / 3)


def _interval_codes(rows: pd.DataFrame, lower: str, upper: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the distances (0.1 vol.%) of the rounded bounds below and above the rounded moisture; 255 for
    both where the row has no interval, or one that does not straddle its moisture or reaches past 25.4 vol.%."""
    def tenths(column: str) -> np.ndarray:
        return np.round(pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) * 10)

    mv = np.clip(tenths("mv_pct"), 0, 65534)
    below, above = mv - tenths(lower), tenths(upper) - mv
    with np.errstate(invalid="ignore"):
        fine = (below >= 0) & (below <= 254) & (above >= 0) & (above <= 254)
    return (np.where(fine, below, 255).astype(np.uint8), np.where(fine, above, 255).astype(np.uint8))


def _summary(values: pd.DataFrame, n_parcels: int) -> dict[str, Any]:
    counts = {s: int((values["status"] == s).sum()) for s in STATUSES}
    counts["no_row"] = n_parcels - int(len(values))
    is_ok = values["status"] == "ok"
    ok = values.loc[is_ok, "mv_pct"].dropna().to_numpy()
    q = np.percentile(ok, [25, 50, 75]).round(1).tolist() if ok.size else [None, None, None]
    std = pd.to_numeric(values.loc[is_ok, "mv_std_pct"], errors="coerce").dropna().to_numpy(dtype=np.float64)
    methods = {m: int((values.loc[is_ok, "method"] == m).sum()) for m in METHODS}
    return {"counts": counts, "quartiles": q, "mean": round(float(ok.mean()), 1) if ok.size else None,
            "std_median": round(float(np.median(std)), 1) if std.size else None, "methods": methods}


def _networks(store: Store) -> list[dict[str, Any]]:
    from plotsm.model.infer import available_networks, load_network

    used = {n for (n,) in store.sql("SELECT DISTINCT network FROM acquisitions WHERE network IS NOT NULL")
            .to_pandas().itertuples(index=False)}
    rows = []
    for name, path in available_networks().items():
        meta = load_network(path).metadata
        ev, val = meta.get("plotsm.evaluation", {}), meta.get("plotsm.validation", {})
        rows.append({"network": name, "used": name in used, "mv_range": meta.get("plotsm.synth_settings", {})
                     .get("mv_pct"), "rmse": ev.get("rmse"), "bound": ev.get("bound_rmse"),
                     "ratio": ev.get("ratio_to_bound"), "validation_rmse": val.get("rmse_pct"),
                     "version": meta.get("plotsm.version")})
    return rows


def _validation(out: Path) -> list[dict[str, Any]] | None:
    path = out / "validation" / "metrics.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    return json.loads(table.to_json(orient="records"))


def _rain(weather_csv: str | Path | None, dates: pd.DataFrame) -> dict[str, Any] | None:
    if weather_csv is None:
        return None
    from plotsm.weather import read_weather_csv

    daily = read_weather_csv(weather_csv)
    day = daily["date"].dt.tz_convert("UTC").dt.tz_localize(None)
    first = dates["datetime_utc"].min().normalize() - pd.Timedelta(days=10)
    last = dates["datetime_utc"].max().normalize()
    keep = (day >= first) & (day <= last)
    return {"days": day[keep].dt.strftime("%Y-%m-%d").tolist(),
            "mm": [None if np.isnan(v) else round(float(v), 1) for v in daily.loc[keep, "precipitation_mm"]]}


def collect(out_dir: str | Path, *, date_from: str | None = None, date_to: str | None = None,
            weather_csv: str | Path | None = None, max_bytes: int = MAX_BYTES) -> ReportData:
    """Everything the report of the run in ``out_dir`` shows (see the module docstring)."""
    out = Path(out_dir)
    with Store(out, read_only=True) as store:
        dates = _dates(store, date_from, date_to)
        parcels = store.read_parcels(expand_attributes=False)
        if not len(parcels):
            raise UsageError(f"{store.path}: no parcels stored: nothing to map.")
        rows = store.sql("SELECT m.parcel_id, m.acquisition_id, m.mv_pct, m.mv_std_pct, m.method, m.status, o.ndvi, "
                         "o.vv_db, " + ", ".join(f"m.{c}" for pair in INTERVALS.values() for c in pair) + " "
                         "FROM moisture m LEFT JOIN observations o USING (parcel_id, acquisition_id) "
                         "WHERE list_contains($ids, m.acquisition_id)",
                         {"ids": dates["acquisition_id"].tolist()}).to_pandas()
        extra = {"networks": _networks(store),
                 "runs": [{"version": r.plotsm_version, "started_utc": str(r.started_utc)[:19], "command": r.command}
                          for r in store.sql("SELECT plotsm_version, started_utc, command FROM runs ORDER BY "
                                             "started_utc").to_pandas().itertuples(index=False)][-10:],
                 "validation": _validation(out), "rain": _rain(weather_csv, dates)}
    return assemble(f"plotsm — {out.resolve().name}", parcels, dates, rows, extra, max_bytes)


def assemble(title: str, parcels: gpd.GeoDataFrame, dates: pd.DataFrame, rows: pd.DataFrame,
             extra: dict[str, Any], max_bytes: int = MAX_BYTES) -> ReportData:
    """The page of ``parcels`` (``parcel_id``, geometry), ``dates`` (the acquisitions table's columns) and
    ``rows`` (parcel_id, acquisition_id, mv_pct, status, ndvi, vv_db, and optionally mv_std_pct, method and the
    bounds of :data:`INTERVALS`), sampled to ``max_bytes``."""
    from plotsm import __version__

    bounds = [c for pair in INTERVALS.values() for c in pair]
    rows = rows.assign(**{c: rows[c] if c in rows else None for c in ("mv_std_pct", "method", *bounds)})
    shipped = [level for level, pair in INTERVALS.items() if rows[list(pair)].notna().all(axis=1).any()]
    ids = dates["acquisition_id"].tolist()
    n_all = len(parcels)
    summaries = [_summary(rows[rows["acquisition_id"] == a], n_all) for a in ids]
    geoms, tolerance = _display_geometry(parcels)
    order = np.argsort(hilbert_order(geoms), kind="stable")
    probe = _outlines(geoms.iloc[order[: min(n_all, 2000)]], tolerance)
    vertices = probe["n_vertices"] * n_all / max(1, min(n_all, 2000))
    notes: list[str] = []
    estimate = _estimate_bytes(n_all, int(vertices), len(ids), len(shipped))
    if estimate > max_bytes:
        step = int(np.ceil(estimate / max_bytes))
        shown = np.sort(order[::step])
        notes.append(f"The map and the series show {shown.size:,} of the {n_all:,} parcels (one in {step}, in "
                     f"Hilbert order: all of them, about {estimate / 1e6:.0f} MB, would exceed the "
                     f"{max_bytes / 1e6:.0f} MB limit); the statistics per date cover them all.")
    else:
        shown = np.arange(n_all)
    sub = parcels.iloc[shown].reset_index(drop=True)
    outlines = _outlines(geoms.iloc[shown], tolerance)
    pid = sub["parcel_id"].astype(str).to_numpy()
    n, d = len(pid), len(ids)
    mv = np.full((d, n), 65535, dtype=np.uint16)
    status = np.full((d, n), 255, dtype=np.uint8)
    ndvi = np.full((d, n), 255, dtype=np.uint8)
    vv = np.full((d, n), -32768, dtype=np.int16)
    std = np.full((d, n), 255, dtype=np.uint8)
    method = np.full((d, n), 255, dtype=np.uint8)
    col = rows["parcel_id"].astype(str).map({p: k for k, p in enumerate(pid)})
    rows = rows.loc[col.notna()]
    pk = col.loc[col.notna()].astype(int).to_numpy()
    dk = rows["acquisition_id"].map({a: k for k, a in enumerate(ids)}).to_numpy()
    status[dk, pk] = rows["status"].map({s: k for k, s in enumerate(STATUSES)}).fillna(254).to_numpy()
    method[dk, pk] = rows["method"].map({m: k for k, m in enumerate(METHODS)}).fillna(255).to_numpy()
    for target, column, scale, offset, lo, hi in ((mv, "mv_pct", 10, 0, 0, 65534), (ndvi, "ndvi", 100, 1, 0, 254),
                                                  (vv, "vv_db", 100, 0, -32767, 32767),
                                                  (std, "mv_std_pct", 10, 0, 0, 254)):
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        fine = np.isfinite(values)
        target[dk[fine], pk[fine]] = np.clip(np.round((values[fine] + offset) * scale), lo, hi)
    intervals: dict[str, str | None] = {f"{side}{level}": None for level in INTERVALS for side in ("lo", "hi")}
    for level in shipped:
        for side, codes in zip(("lo", "hi"), _interval_codes(rows, *INTERVALS[level]), strict=True):
            packed = np.full((d, n), 255, dtype=np.uint8)
            packed[dk, pk] = codes
            intervals[f"{side}{level}"] = _b64(packed.ravel())
    page = {
        "title": title,
        "version": __version__,
        "crs": parcels.crs.to_string() if parcels.crs is not None else None,
        "statuses": list(STATUSES),
        "methods": list(METHODS),
        "parcel_ids": pid.tolist(),
        "outlines": outlines,
        "dates": [{"id": r.acquisition_id, "datetime_utc": pd.Timestamp(str(r.datetime_utc)).strftime("%Y-%m-%d %H:%M"),
                   "platform": r.platform, "orbit": _orbit(r.orbit_direction, r.relative_orbit),
                   "apriori": r.apriori, "apriori_reason": r.apriori_reason, "network": r.network, **summ}
                  for r, summ in zip(dates.itertuples(index=False), summaries, strict=True)],
        "values": {"mv": _b64(mv.ravel()), "status": _b64(status.ravel()), "ndvi": _b64(ndvi.ravel()),
                   "vv": _b64(vv.ravel()), "std": _b64(std.ravel()), "method": _b64(method.ravel()),
                   **intervals},
        "inputs": [{"acquisition_id": r.acquisition_id, "inputs": json.loads(str(r.inputs))}
                   for r in dates.itertuples(index=False)],
        "settings": _distinct_settings(dates["settings"]),
        "notes": notes,
        "n_parcels": n_all,
        "networks": [], "runs": [], "validation": None, "rain": None,
    }
    page.update(extra)
    return ReportData(page, n_all, n, d, notes)


def _orbit(direction: Any, relative: Any) -> str | None:
    if relative is None or pd.isna(relative):
        return None
    return f"{str(direction or '?')[:1].upper()}{int(relative)}"


def _distinct_settings(settings: pd.Series) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for text in settings:
        value = json.loads(text)
        if value not in seen:
            seen.append(value)
    return seen
