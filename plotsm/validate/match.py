"""Probes matched to parcels in space and to acquisitions in time.

In space (:func:`match_parcels`): ``contains`` gives each station the parcel its point falls in (of overlapping
parcels, the smallest); ``nearest:50m`` the nearest parcel within 50 m (0 m inside one), measured in metres in the
parcels' CRS, or in the UTM zone of the parcels when their CRS is geographic. Probe positions are WGS 84
(EPSG:4326) and transformed to the parcels' CRS.

In time (:func:`match_times`): each estimate (status ``ok``) of a station's parcel takes the station's reading
nearest in time within ± ``window`` (inclusive); an estimate without one is not matched.
"""

from __future__ import annotations

import re
from datetime import timedelta

import geopandas as gpd
import pandas as pd

from plotsm.errors import UsageError, option

MATCH_MODES = ("contains", "nearest")
_DISTANCE = re.compile(r"^nearest:(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>m|km)$")
_WINDOW = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>s|min|h|d)$")
_WINDOW_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
#: Columns of the links :func:`match_parcels` returns.
LINK_COLUMNS = ("network", "station", "parcel_id", "distance_m")


def parse_match(match: str) -> float | None:
    """None for ``contains``; the distance in metres for ``nearest:<d>m`` or ``nearest:<d>km``."""
    text = str(match).strip().lower()
    if text == "contains":
        return None
    found = _DISTANCE.match(text)
    if found is None:
        raise UsageError(f"{option('match', match)}: expected contains or nearest:<distance>, e.g. nearest:50m")
    return float(found["value"]) * (1000.0 if found["unit"] == "km" else 1.0)


def parse_window(window: str | timedelta) -> pd.Timedelta:
    """``12h``, ``90min``, ``1d``, ``30s`` or a timedelta, as a positive Timedelta."""
    if isinstance(window, timedelta):
        value = pd.Timedelta(window)
    else:
        found = _WINDOW.match(str(window).strip().lower())
        if found is None:
            raise UsageError(f"{option('window', window)}: expected a duration such as 12h, 90min or 1d")
        value = pd.Timedelta(seconds=float(found["value"]) * _WINDOW_SECONDS[found["unit"]])
    if value <= pd.Timedelta(0):
        raise UsageError(f"{option('window', window)}: expected a duration above zero")
    return value


def match_parcels(stations: pd.DataFrame, parcels: gpd.GeoDataFrame, max_distance_m: float | None,
                  notes: list[str]) -> pd.DataFrame:
    """Each station's parcel (:data:`LINK_COLUMNS`); stations without one are left out and noted."""
    parcels = parcels[~parcels.geometry.is_empty & parcels.geometry.notna()][["parcel_id", "geometry"]]
    if len(stations) == 0 or len(parcels) == 0:
        return pd.DataFrame(columns=list(LINK_COLUMNS))
    points = gpd.GeoDataFrame(stations[["network", "station"]].reset_index(drop=True),
                              geometry=gpd.points_from_xy(stations["lon"], stations["lat"]), crs="EPSG:4326")
    points = points.to_crs(parcels.crs)
    if max_distance_m is None:
        joined = gpd.sjoin(points, parcels, how="inner", predicate="within")
        joined["area"] = parcels.geometry.area.reindex(joined["index_right"]).to_numpy()
        joined["distance_m"] = 0.0
        order = ["area", "parcel_id"]
    else:
        metric = _metric_crs(parcels)
        joined = gpd.sjoin_nearest(points.to_crs(metric), parcels.to_crs(metric), how="inner",
                                   max_distance=max_distance_m, distance_col="distance_m")
        order = ["distance_m", "parcel_id"]
    several = joined.groupby(["network", "station"]).size()
    for (network, station), n in several[several > 1].items():
        notes.append(f"station {station} ({network}): {n} parcels qualify; the "
                     f"{'smallest' if max_distance_m is None else 'nearest'} is used")
    links = (joined.sort_values(["network", "station", *order]).drop_duplicates(["network", "station"])
             [list(LINK_COLUMNS)].reset_index(drop=True))
    links["parcel_id"] = links["parcel_id"].astype(str)
    unmatched = stations.merge(links, on=["network", "station"], how="left", indicator=True)
    unmatched = unmatched[unmatched["_merge"] == "left_only"]
    if len(unmatched):
        where = "inside no parcel" if max_distance_m is None else f"farther than {max_distance_m:g} m from every parcel"
        names = ", ".join(unmatched["station"].astype(str).head(5)) + (" …" if len(unmatched) > 5 else "")
        notes.append(f"{len(unmatched)} station(s) {where}, not used: {names}"
                     + (f" (try {option('match', 'nearest:50m')})" if max_distance_m is None else ""))
    return links


def _metric_crs(parcels: gpd.GeoDataFrame) -> object:
    """The parcels' CRS if it is in metres, else the UTM zone of their extent."""
    crs = parcels.crs
    if crs is not None and crs.is_projected and all(
            (a.unit_name or "").lower() in ("metre", "meter") for a in crs.axis_info):
        return crs
    return parcels.estimate_utm_crs()


def match_times(estimates: pd.DataFrame, readings: pd.DataFrame, links: pd.DataFrame,
                window: pd.Timedelta) -> pd.DataFrame:
    """Every (station, estimate) pair with the station's nearest reading within ``window``: ``network, station,
    parcel_id, distance_m, acquisition_id, datetime_utc, probe_time_utc, dt_hours, estimate_pct, probe_pct,
    difference_pct``, sorted by station and time."""
    est = estimates[["parcel_id", "acquisition_id", "datetime_utc", "mv_pct"]].copy()
    est["parcel_id"] = est["parcel_id"].astype(str)
    left = links.merge(est, on="parcel_id", how="inner")
    columns = ["network", "station", "parcel_id", "distance_m", "acquisition_id", "datetime_utc", "probe_time_utc",
               "dt_hours", "estimate_pct", "probe_pct", "difference_pct"]
    if len(left) == 0 or len(readings) == 0:
        return pd.DataFrame(columns=columns)
    left["datetime_utc"] = pd.to_datetime(left["datetime_utc"], utc=True).astype("datetime64[ns, UTC]")
    right = readings.rename(columns={"time_utc": "probe_time_utc", "sm_pct": "probe_pct"})
    right["probe_time_utc"] = right["probe_time_utc"].astype("datetime64[ns, UTC]")
    right["_t"] = right["probe_time_utc"]
    paired = pd.merge_asof(left.sort_values("datetime_utc"), right.sort_values("_t"), left_on="datetime_utc",
                           right_on="_t", by=["network", "station"], direction="nearest", tolerance=window)
    paired = paired[paired["probe_pct"].notna()].copy()
    paired["dt_hours"] = (paired["probe_time_utc"] - paired["datetime_utc"]).dt.total_seconds() / 3600.0
    paired["estimate_pct"] = paired["mv_pct"].astype(float)
    paired["probe_pct"] = paired["probe_pct"].astype(float)
    paired["difference_pct"] = paired["estimate_pct"] - paired["probe_pct"]
    paired = paired.sort_values(["network", "station", "datetime_utc", "acquisition_id"], kind="stable")
    return paired[columns].reset_index(drop=True)


__all__ = ["LINK_COLUMNS", "MATCH_MODES", "match_parcels", "match_times", "parse_match", "parse_window"]
