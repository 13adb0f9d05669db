"""The plan of a search: a STAC ItemCollection JSON of the products found, which ``plotsm download`` (next
stage) will take.

The file is a GeoJSON FeatureCollection of STAC items as the services sent them, each tagged with
``properties["plotsm:collection"]`` (``s1-grd``, ``s2-l2a``, ``s2-l2a-maja``, ``s2-l3a``) and
``properties["plotsm:provider"]`` (``cdse``, ``geodes``); GEODES assets also carry the ``file:size``,
``file:checksum`` and ``plotsm:online`` read from their descriptions. Two foreign members say how it was made:
``plotsm:plan`` (the format's version) and ``plotsm:search`` (area, period, collections, filters, services,
per-collection counts, time of the search). pystac reads it (``pystac.ItemCollection.from_file``).

:func:`write_plan` writes it atomically; :func:`read_plan` reads it back and checks it (:class:`InputError`
naming the file, the item and the fix).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plotsm.acquire.aoi import Aoi
from plotsm.acquire.items import sensing_time
from plotsm.acquire.query import COLLECTIONS, CollectionResult, SearchQuery
from plotsm.atomic import atomic_path
from plotsm.errors import InputError

#: Version of the plan's layout, ``plotsm:plan`` in the file.
PLAN_VERSION = 1


@dataclass
class Plan:
    """A plan read back: its items (STAC item dicts) and how it was made (``search``, the ``plotsm:search``
    member)."""

    items: list[dict[str, Any]]
    search: dict[str, Any] = field(default_factory=dict)

    def by_collection(self) -> dict[str, list[dict[str, Any]]]:
        """The items by plotsm collection name, in the plan's order."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for item in self.items:
            groups.setdefault(item["properties"]["plotsm:collection"], []).append(item)
        return groups


def plan_document(results: Sequence[CollectionResult], aoi: Aoi, query: SearchQuery,
                  urls: dict[str, str]) -> dict[str, Any]:
    """The ItemCollection dict of ``results`` (items in collection order, then as served)."""
    from plotsm import __version__

    return {
        "type": "FeatureCollection",
        "features": [item for result in results for item in result.items],
        "plotsm:plan": PLAN_VERSION,
        "plotsm:search": {
            "aoi": {"kind": aoi.kind, "source": aoi.source, "bbox": list(aoi.bbox), "geometry": aoi.to_geojson()},
            **query.as_dict(),
            "services": urls,
            "counts": {r.name: {"kept": len(r.items), "served": r.n_served, "pages": r.n_pages,
                                "dropped": dict(r.dropped), "unknown": dict(r.unknown),
                                **({"note": r.note} if r.note else {})} for r in results},
            "searched_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "plotsm_version": __version__,
        },
    }


def write_plan(path: str | os.PathLike[str], results: Sequence[CollectionResult], aoi: Aoi, query: SearchQuery,
               urls: dict[str, str]) -> Path:
    """Write the plan of ``results`` to ``path`` atomically (nothing half-written is ever seen); return the path."""
    target = Path(path)
    text = json.dumps(plan_document(results, aoi, query, urls), indent=1, ensure_ascii=False)
    with atomic_path(target) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return target


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """The plan at ``path``, checked: a STAC ItemCollection written by ``plotsm search`` whose every item has an
    id (unique within its collection), a known ``plotsm:collection``, a sensing time and assets, and which
    pystac can read. :class:`InputError` naming the file, the item and the fix otherwise."""
    path = Path(path)
    fix = "Write it again with `plotsm search … --out FILE`."
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: plan not found. Make one with `plotsm search … --out {path}`.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}). {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc}).") from None
    if not (isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list)):
        raise InputError(f"{path}: not a STAC ItemCollection (expected "
                         '{"type": "FeatureCollection", "features": [...]}). ' + fix)
    version = doc.get("plotsm:plan")
    if version is None:
        raise InputError(f"{path}: not a plan of `plotsm search` (no 'plotsm:plan' member). {fix}")
    if not isinstance(version, int) or version > PLAN_VERSION:
        raise InputError(f"{path}: plan version {version!r} is newer than this plotsm reads ({PLAN_VERSION}). "
                         "Upgrade plotsm, or search again with this one.")
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(doc["features"]):
        key = _check_item(item, i, path, fix)
        if key in seen:
            raise InputError(f"{path}: item {i} ({key[1]}) appears twice in {key[0]}. {fix}")
        seen.add(key)
    import pystac
    from pystac.errors import STACError, STACTypeError

    try:
        pystac.ItemCollection.from_dict(doc, preserve_dict=True)
    except (STACError, STACTypeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: pystac cannot read it as an ItemCollection ({exc}). {fix}") from None
    search = doc.get("plotsm:search")
    return Plan(items=doc["features"], search=search if isinstance(search, dict) else {})


def _check_item(item: Any, i: int, path: Path, fix: str) -> tuple[str, str]:
    """(collection, id) of feature ``i``, or :class:`InputError` saying what is wrong with it."""
    if not (isinstance(item, dict) and item.get("type") == "Feature"):
        raise InputError(f"{path}: feature {i} is not a STAC item (type Feature). {fix}")
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise InputError(f"{path}: feature {i} has no id. {fix}")
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InputError(f"{path}: item {item_id} has no properties. {fix}")
    collection = props.get("plotsm:collection")
    if collection not in COLLECTIONS:
        raise InputError(f"{path}: item {item_id}: plotsm:collection {collection!r} is not one of "
                         f"{', '.join(COLLECTIONS)}. {fix}")
    if sensing_time(item) is None and collection != "dem":  # a DEM tile needs no time
        raise InputError(f"{path}: item {item_id} has no sensing time (start_datetime or datetime). {fix}")
    assets = item.get("assets")
    if not (isinstance(assets, dict) and assets):
        raise InputError(f"{path}: item {item_id} has no assets: nothing to download. {fix}")
    return str(collection), item_id


__all__ = ["PLAN_VERSION", "Plan", "plan_document", "read_plan", "write_plan"]
