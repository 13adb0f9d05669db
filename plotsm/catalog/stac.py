"""STAC ItemCollection reading (by hand, no pystac): items, S1 scenes, NDVI keys, asset choice, hrefs, units.

The rules (which properties and assets are read, how hrefs are resolved) are in the **STAC ItemCollection**
section of the :mod:`plotsm.catalog` docstring.
"""

from __future__ import annotations

import calendar
import json
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from plotsm.catalog.naming import (
    _DB_UNITS,
    _direction,
    _listing,
    _name_orbit,
    _orbit_number,
    _parse_iso,
    _platform,
    _Problem,
    _tokens,
)
from plotsm.catalog.scene import S1Scene, VvUnit
from plotsm.errors import InputError


def _stac_items(path: Path) -> list[dict[str, Any]]:
    """The items of a STAC ItemCollection (or a lone item) JSON, each with dict ``properties`` and ``assets``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}). Pass a STAC ItemCollection "
                         "or a folder of GeoTIFFs.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}).") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        items = doc["features"]
    else:
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"{path}: not a STAC ItemCollection (type {kind!r}; expected "
                         '{"type": "FeatureCollection", "features": [items…]}). Save the search results as an '
                         "ItemCollection (pystac: item_collection.save_object(...)) or pass a folder of GeoTIFFs.")
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("properties"), dict)
                and isinstance(item.get("assets"), dict)):
            raise InputError(f"{path}: feature {i} is not a STAC item (it needs 'properties' and 'assets').")
    return items


def _s1_from_stac(path: Path) -> list[S1Scene]:
    scenes: list[S1Scene] = []
    problems: list[str] = []
    for item in _stac_items(path):
        name = f"item {item.get('id', '?')}"
        props, assets = item["properties"], item["assets"]
        try:
            when = _item_datetime(props, name)
            vv_key = _pick_asset(assets, ("sigma0_vv", "vv_sigma0", "sigma0", "vv"), ("data", "backscatter"), pol="VV")
            theta_key = _pick_asset(assets, ("incidence_angle", "ellipsoid_incidence_angle", "theta"),
                                    ("incidence-angle", "ellipsoid-incidence-angle")) \
                or _pick_asset(assets, ("local_incidence_angle",), ("local-incidence-angle",))
            missing = [what for what, key in (("σ⁰ VV", vv_key), ("incidence-angle", theta_key)) if key is None]
            if missing:
                raw = " It looks like a raw GRD product: calibrate it first (plotsm s1 calibrate)." \
                    if "GRD" in str(props.get("product:type", props.get("sar:product_type", ""))).upper() else ""
                raise _Problem(f"{name}: no {' and no '.join(missing)} asset (assets: {', '.join(assets)}). Name the "
                               f"assets 'sigma0_vv' and 'incidence_angle'.{raw}")
            assert vv_key is not None and theta_key is not None
            vv, theta = (_asset_path(assets[k], path, f"{name} asset {k!r}") for k in (vv_key, theta_key))
            platform = _platform(str(props["platform"])) if props.get("platform") else _name_orbit(
                set(re.split(r"[^a-z0-9]+", str(item.get("id", "")).lower())))[0]
            direction = _direction(str(props["sat:orbit_state"]), name) if props.get("sat:orbit_state") else None
            orbit = _orbit_number(props.get("sat:relative_orbit"), f"{name}: sat:relative_orbit")
        except _Problem as exc:
            problems.append(str(exc))
            continue
        scenes.append(S1Scene(when, vv, theta, platform, direction, orbit, _asset_unit(vv_key, assets[vv_key], vv)))
    by_id: dict[str, list[S1Scene]] = defaultdict(list)
    for scene in scenes:
        by_id[scene.acquisition_id].append(scene)
    problems += [f"{len(same)} items for one acquisition ({key}): {', '.join(s.vv.name for s in same)}; keep one"
                 for key, same in by_id.items() if len(same) > 1]
    if problems:
        raise InputError(_listing(f"{path}: {len(problems)} problem(s) with the STAC items", problems).rstrip())
    if not scenes:
        raise InputError(f"{path}: the ItemCollection has no items. Add one item per S1 acquisition.")
    return scenes


def _item_ndvi_key(props: Mapping[str, Any], name: str) -> str:
    """``YYYY-MM`` when start/end_datetime span one calendar month, else the date ``YYYY-MM-DD``."""
    if props.get("start_datetime") and props.get("end_datetime"):
        start = _parse_iso(str(props["start_datetime"]), f"{name}: start_datetime")
        end = _parse_iso(str(props["end_datetime"]), f"{name}: end_datetime")
        last_day = calendar.monthrange(start.year, start.month)[1]
        month_end = start.replace(day=last_day, hour=0, minute=0, second=0, microsecond=0)
        if start.day == 1 and start.time() == datetime.min.time() and month_end <= end <= month_end + timedelta(days=1):
            return f"{start:%Y-%m}"
    return f"{_item_datetime(props, name):%Y-%m-%d}"


def _item_datetime(props: Mapping[str, Any], name: str) -> datetime:
    text = props.get("datetime") or props.get("start_datetime")
    if not text:
        raise _Problem(f"{name}: no properties.datetime (nor start_datetime)")
    return _parse_iso(str(text), f"{name}: datetime")


def _pick_asset(assets: Mapping[str, Any], keys: tuple[str, ...], roles: tuple[str, ...],
                pol: str | None = None) -> str | None:
    """The first asset whose key is in ``keys`` (in that order), else the first with one of ``roles`` (and only
    polarisation ``pol`` if given); metadata assets never."""
    usable = {k: a for k, a in assets.items() if isinstance(a, dict) and a.get("href")
              and not {"metadata", "thumbnail", "overview"} & set(a.get("roles") or [])}
    normal = {k.lower().replace("-", "_"): k for k in usable}
    for key in keys:
        if key in normal:
            return normal[key]
    for role in roles:
        for k, a in usable.items():
            if role in (a.get("roles") or []) and (pol is None or [str(p).upper() for p in
                                                                    a.get("sar:polarizations") or []] == [pol]):
                return k
    return None


def _single_data_asset(assets: Mapping[str, Any], name: str) -> str:
    data = [k for k, a in assets.items() if isinstance(a, dict) and "data" in (a.get("roles") or [])]
    if len(data) != 1:
        raise _Problem(f"{name}: no 'ndvi' asset and {len(data)} 'data' assets ({', '.join(assets)}); name the NDVI "
                       "asset 'ndvi'")
    return data[0]


def _asset_path(asset: Mapping[str, Any], stac_file: Path, what: str) -> Path:
    href = str(asset["href"])
    url = urlparse(href)
    if url.scheme == "file":
        path = Path(unquote(url.path))
    elif url.scheme and len(url.scheme) > 1:  # one letter: a Windows drive
        raise _Problem(f"{what}: remote href {href}; download the assets and point the hrefs at the local files")
    else:
        path = Path(unquote(href))
        path = path if path.is_absolute() else stac_file.parent / path
    if not path.is_file():
        raise _Problem(f"{what}: {path} not found (href {href!r}, relative hrefs are read from {stac_file.parent})")
    return path


def _asset_unit(key: str, asset: Mapping[str, Any], path: Path) -> VvUnit:
    bands = asset.get("raster:bands") or [{}]
    unit = str((bands[0] if isinstance(bands[0], dict) else {}).get("unit") or asset.get("unit") or "").lower()
    if unit:
        return "db" if unit in _DB_UNITS else "linear"
    tokens = set(re.split(r"[^a-z0-9]+", key.lower())) | _tokens(path)
    return "db" if "db" in tokens else "linear"
