"""``plotsm search``: Sentinel-1 GRD and Sentinel-2 L2A/L3A products over an area and a period, summarised and
written as a plan (a STAC ItemCollection JSON) for the download to come (:mod:`plotsm.acquire`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from plotsm.cli.console import info, out
from plotsm.cli.progress import progress

#: Environment variables naming the services when --stac-url / --geodes-url are not given.
ENV_STAC_URL = "PLOTSM_STAC_URL"
ENV_GEODES_URL = "PLOTSM_GEODES_URL"


def search(
    aoi: Annotated[str, typer.Option("--aoi", metavar="PARCELS|GEOJSON|BBOX", help="The area: a parcels file (shapefile, GeoPackage, GeoJSON with a crs, GeoParquet: their extent), a GeoJSON file (geometry, Feature or FeatureCollection, lon/lat) or a bbox minx,miny,maxx,maxy in degrees (lon/lat).")],
    start: Annotated[str, typer.Option("--start", metavar="YYYY-MM-DD", help="First day of the period (UTC), included.")],
    end: Annotated[str, typer.Option("--end", metavar="YYYY-MM-DD", help="Last day of the period (UTC), included.")],
    collections: Annotated[str, typer.Option("--collections", help="Comma-separated: s1-grd (Sentinel-1 GRD IW with VV, CDSE), s2-l2a (Sentinel-2 L2A, CDSE), s2-l2a-maja (Sentinel-2 L2A MAJA, GEODES), s2-l3a (Sentinel-2 L3A monthly syntheses, GEODES). dem is not supported yet (its CDSE collection id is unconfirmed).")] = "s1-grd,s2-l2a",
    max_cloud: Annotated[float, typer.Option("--max-cloud", help="Largest cloud cover (%) of Sentinel-2 L2A products; products without a cloud cover are kept and counted.")] = 80.0,
    orbit_direction: Annotated[Optional[str], typer.Option("--orbit-direction", metavar="ascending|descending", help="Sentinel-1 only: keep this orbit direction. Products that do not say theirs are kept and counted as unknown.")] = None,
    relative_orbit: Annotated[Optional[int], typer.Option("--relative-orbit", metavar="N", help="Sentinel-1 only: keep this relative orbit (1-175). Products that do not say theirs are kept and counted as unknown.")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="The plan written: a STAC ItemCollection JSON of the products found (for the coming `plotsm download`).")] = Path("items.json"),
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help=f"CDSE STAC API root. Default: ${ENV_STAC_URL}, else CDSE's (above).")] = None,
    geodes_url: Annotated[Optional[str], typer.Option("--geodes-url", help=f"GEODES STAC API root. Default: ${ENV_GEODES_URL}, else GEODES' (above).")] = None,
    max_items: Annotated[int, typer.Option("--max-items", help="Stop with an error when one collection's search serves more products than this (a mistaken area or period).")] = 5000,
    parcels_crs: Annotated[Optional[str], typer.Option("--parcels-crs", help="CRS of a parcels file that has none, e.g. EPSG:2154.")] = None,
    parcels_layer: Annotated[Optional[str], typer.Option("--parcels-layer", help="Layer of a multi-layer parcels file.")] = None,
) -> None:
    """Find Sentinel-1 GRD and Sentinel-2 products over an area and a period (no credentials needed), print a
    summary per collection and write the plan (a STAC ItemCollection JSON).

    A search that finds nothing writes an empty plan, says so and exits 0; a service down exits 4, writing nothing.

    CDSE STAC: https://stac.dataspace.copernicus.eu/v1 (or --stac-url, or $PLOTSM_STAC_URL).

    GEODES: https://geodes-portal.cnes.fr/api/stac (or --geodes-url, or $PLOTSM_GEODES_URL).

    Download is not there yet.
    """
    from plotsm.acquire import (
        CDSE_STAC_URL,
        GEODES_STAC_URL,
        SearchQuery,
        parse_collections,
        parse_day,
        read_aoi,
        search_products,
        service_urls,
        summarise_all,
        write_plan,
    )
    from plotsm.atomic import check_destination
    from plotsm.errors import StorageError, UsageError

    query = SearchQuery(start=parse_day(start, "start"), end=parse_day(end, "end"),
                        collections=parse_collections(collections), max_cloud=max_cloud,
                        orbit_direction=orbit_direction, relative_orbit=relative_orbit)
    if max_items < 1:
        raise UsageError(f"--max-items {max_items}: expected a number of products >= 1.")
    urls = service_urls(query, stac_url=stac_url or os.environ.get(ENV_STAC_URL) or CDSE_STAC_URL,
                        geodes_url=geodes_url or os.environ.get(ENV_GEODES_URL) or GEODES_STAC_URL)
    area = read_aoi(aoi, parcels_crs=parcels_crs, layer=parcels_layer)
    if out_path.is_dir():
        raise StorageError(f"--out {out_path}: is a folder. Pass a file name, e.g. {out_path / 'items.json'}.")
    check_destination(out_path.parent if str(out_path.parent) else Path("."), "--out")
    x0, y0, x1, y1 = area.bbox
    where = (f"bbox {area.source}" if area.kind == "bbox" else
             f"{area.kind} {area.source}" + (f", {area.note}" if area.note else "")
             + f" (bbox {x0:.5f},{y0:.5f},{x1:.5f},{y1:.5f})")
    info(escape(f"searching {where}, {query.start} to {query.end}"))

    with progress() as bar:
        tasks: dict[str, Any] = {}

        def report(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"searching {what}", total=None)
            bar.update(tasks[what], completed=done, total=total or None)

        results = search_products(area, query, stac_url=urls.get("cdse", CDSE_STAC_URL),
                                  geodes_url=urls.get("geodes", GEODES_STAC_URL), progress=report,
                                  max_items=max_items)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    path = write_plan(out_path, results, area, query, urls)
    summaries = summarise_all(results)
    _print_summary(summaries)
    total = sum(s.n_items for s in summaries)
    if total == 0:
        out.print(f"no products found for {', '.join(query.collections)} from {query.start} to {query.end} over "
                  "this area. Widen the period or the area, raise --max-cloud, or drop the orbit filters.",
                  highlight=False, soft_wrap=True)
    out.print(f"wrote {escape(str(path))} ({total} products)", highlight=False, soft_wrap=True)


def _print_summary(summaries: list[Any]) -> None:
    """A table of the numbers (narrow enough for 80 columns), then one line per list: orbits or tiles, what was
    filtered out, what could not be checked, sizes not known."""
    from plotsm.acquire import COLLECTIONS, human_size

    table = Table(title="products found")
    for column in ("collection", "products", "size", "first", "last"):
        table.add_column(column, justify="right" if column in ("products", "size") else "left", no_wrap=True)
    for s in summaries:
        table.add_row(s.name, f"{s.n_items} of {s.n_served}", human_size(s.size_bytes, s.n_unknown_size),
                      str(s.first or "-"), str(s.last or "-"))
    out.print(table)
    lines = []
    for s in summaries:
        if s.groups:
            kind = "orbits" if COLLECTIONS[s.name].sensor == "s1" else "tiles"
            lines.append(f"{s.name} {kind}: " + ", ".join(f"{label} ({n})" for label, n in s.groups.items()))
        if s.dropped:
            lines.append(f"{s.name} filtered out: " + ", ".join(f"{n} {reason}" for reason, n in s.dropped.items()))
        for what, n in s.unknown.items():
            lines.append(f"{s.name}: {n} product(s) kept although their {what} is unknown (the item does not say "
                         "it; the filter could not be checked).")
        if s.n_items and s.size_bytes is None:
            lines.append(f"{s.name}: size unknown (the service gives no file:size).")
        elif s.n_unknown_size:
            lines.append(f"{s.name}: {s.n_unknown_size} product(s) without file:size, not in the size.")
    for line in lines:
        out.print(escape(line), highlight=False, soft_wrap=True)
