"""What plotsm reads from a STAC item found by a search: sensing time, size, S2 tile, S1 orbit, product type and
polarisations, footprint. Each reader returns ``None`` when the item does not say (never a guess).

- sensing time: ``start_datetime``, else ``datetime`` (GEODES items carry the sensing start in
  ``start_datetime`` and a later time in ``datetime``);
- size: the sum of the assets' ``file:size`` (every asset listed: a product archive and the single files it
  holds both count when both are listed), ``None`` when no asset has one;
- S2 tile: ``grid:code`` (``MGRS-31TCJ``, GEODES ``T31TCJ``), ``s2:mgrs_tile``, the ``mgrs:*`` properties,
  else ``_T31TCJ_`` in the id (ESA and MAJA names);
- S1 orbit: ``sat:orbit_state`` (either case) and ``sat:relative_orbit``; not derived from the absolute orbit,
  whose offset differs by platform;
- S1 product type and polarisations: ``product:type`` and ``sar:polarizations``, else the product name
  (``S1A_IW_GRDH_1SDV_…``: IW_GRDH_1S, VV+VH).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import shapely
import shapely.errors
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from plotsm.times import utc

_TILE = re.compile(r"^(?:MGRS-)?T?(\d{1,2}[C-X][A-Z]{2})$")
_TILE_IN_ID = re.compile(r"(?:^|_)T(\d{2}[C-X][A-Z]{2})(?:_|$)")
_S1_NAME = re.compile(r"^S1[A-D]_(?P<mode>IW|EW|SM|WV|S[1-6])_(?P<kind>GRD[FHM])_1S(?P<pol>SV|SH|DV|DH|HH|VV|HV|VH)")


def properties(item: Mapping[str, Any]) -> Mapping[str, Any]:
    props = item.get("properties")
    return props if isinstance(props, Mapping) else {}


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an RFC 3339 string, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def sensing_time(item: Mapping[str, Any]) -> datetime | None:
    props = properties(item)
    return parse_time(props.get("start_datetime")) or parse_time(props.get("datetime"))


def asset_size(asset: Any) -> int | None:
    size = asset.get("file:size") if isinstance(asset, Mapping) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def item_size(item: Mapping[str, Any]) -> int | None:
    assets = item.get("assets")
    sizes = [s for a in assets.values() if (s := asset_size(a)) is not None] if isinstance(assets, Mapping) else []
    return sum(sizes) if sizes else None


def s2_tile(item: Mapping[str, Any]) -> str | None:
    props = properties(item)
    for key in ("grid:code", "s2:mgrs_tile", "mgrs:tile"):
        value = props.get(key)
        if isinstance(value, str) and (m := _TILE.match(value.strip().upper())):
            return m[1].zfill(5)
    zone, band, square = props.get("mgrs:utm_zone"), props.get("mgrs:latitude_band"), props.get("mgrs:grid_square")
    if isinstance(zone, int) and isinstance(band, str) and isinstance(square, str):
        return f"{zone:02d}{band}{square}".upper()
    m = _TILE_IN_ID.search(str(item.get("id", "")))
    return m[1] if m else None


def orbit_direction(item: Mapping[str, Any]) -> str | None:
    value = properties(item).get("sat:orbit_state")
    direction = value.strip().lower() if isinstance(value, str) else None
    return direction if direction in ("ascending", "descending") else None


def relative_orbit(item: Mapping[str, Any]) -> int | None:
    value = properties(item).get("sat:relative_orbit")
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def s1_product_type(item: Mapping[str, Any]) -> str | None:
    """``IW_GRDH_1S`` and the like, from ``product:type`` or the product name."""
    value = properties(item).get("product:type")
    if isinstance(value, str) and value.strip():
        return value.strip().upper()
    m = _S1_NAME.match(str(item.get("id", "")))
    return f"{m['mode']}_{m['kind']}_1S" if m else None


def s1_polarisations(item: Mapping[str, Any]) -> set[str] | None:
    """The polarisations of an S1 product (``{"VV", "VH"}``), from ``sar:polarizations`` or the product name."""
    value = properties(item).get("sar:polarizations")
    if isinstance(value, list) and value:
        return {str(v).strip().upper() for v in value}
    m = _S1_NAME.match(str(item.get("id", "")))
    if not m:
        return None
    return {"SV": {"VV"}, "DV": {"VV", "VH"}, "SH": {"HH"}, "DH": {"HH", "HV"}}.get(m["pol"], {m["pol"]})


def cloud_cover(item: Mapping[str, Any]) -> float | None:
    value = properties(item).get("eo:cloud_cover")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def footprint(item: Mapping[str, Any]) -> BaseGeometry | None:
    """The item's geometry (made valid), or None when absent or unreadable."""
    geometry = item.get("geometry")
    if not isinstance(geometry, Mapping):
        return None
    try:
        return shapely.make_valid(shapely.geometry.shape(geometry))
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
        return None


__all__ = ["asset_size", "cloud_cover", "footprint", "item_size", "orbit_direction", "parse_time", "properties",
           "relative_orbit", "s1_polarisations", "s1_product_type", "s2_tile", "sensing_time"]
