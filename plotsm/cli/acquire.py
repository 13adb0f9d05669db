"""``plotsm search``: Sentinel-1 GRD and Sentinel-2 L2A/L3A products over an area and a period, summarised and
written as a plan (a STAC ItemCollection JSON); ``plotsm download``: the files of a plan, fetched, checked and
recorded (:mod:`plotsm.acquire`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from plotsm.cli.console import err, info, out, state
from plotsm.cli.progress import progress, stage_reporter, transfer_progress

#: Environment variables naming the services when --stac-url / --geodes-url / --odata-url / --token-url are not
#: given.
ENV_STAC_URL = "PLOTSM_STAC_URL"
ENV_GEODES_URL = "PLOTSM_GEODES_URL"
ENV_ODATA_URL = "PLOTSM_ODATA_URL"
ENV_TOKEN_URL = "PLOTSM_TOKEN_URL"
#: The STAC collection id of the Copernicus DEM GLO-30 on CDSE when --dem-collection is not given (else it is
#: found in the service's /collections).
ENV_DEM_COLLECTION = "PLOTSM_DEM_COLLECTION"


def search(
    aoi: Annotated[str, typer.Option("--aoi", metavar="PARCELS|GEOJSON|BBOX", help="The area: a parcels file (shapefile, GeoPackage, GeoJSON with a crs, GeoParquet: their extent), a GeoJSON file (geometry, Feature or FeatureCollection, lon/lat) or a bbox minx,miny,maxx,maxy in degrees (lon/lat).")],
    start: Annotated[str, typer.Option("--start", metavar="YYYY-MM-DD", help="First day of the period (UTC), included.")],
    end: Annotated[str, typer.Option("--end", metavar="YYYY-MM-DD", help="Last day of the period (UTC), included.")],
    collections: Annotated[str, typer.Option("--collections", help="Comma-separated: s1-grd (Sentinel-1 GRD IW with VV, CDSE), s2-l2a (Sentinel-2 L2A, CDSE), s2-l2a-maja (Sentinel-2 L2A MAJA, GEODES), s2-l3a (Sentinel-2 L3A monthly syntheses, GEODES), dem (Copernicus DEM GLO-30 1° tiles, CDSE; kept whatever the period: a DEM has no season).")] = "s1-grd,s2-l2a",
    max_cloud: Annotated[float, typer.Option("--max-cloud", help="Largest cloud cover (%) of Sentinel-2 L2A products; products without a cloud cover are kept and counted.")] = 80.0,
    orbit_direction: Annotated[Optional[str], typer.Option("--orbit-direction", metavar="ascending|descending", help="Sentinel-1 only: keep this orbit direction. Products that do not say theirs are kept and counted as unknown.")] = None,
    relative_orbit: Annotated[Optional[int], typer.Option("--relative-orbit", metavar="N", help="Sentinel-1 only: keep this relative orbit (1-175). Products that do not say theirs are kept and counted as unknown.")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="The plan written: a STAC ItemCollection JSON of the products found (for `plotsm download`).")] = Path("items.json"),
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help=f"CDSE STAC API root. Default: ${ENV_STAC_URL}, else CDSE's (above).")] = None,
    geodes_url: Annotated[Optional[str], typer.Option("--geodes-url", help=f"GEODES STAC API root. Default: ${ENV_GEODES_URL}, else GEODES' (above).")] = None,
    odata_url: Annotated[Optional[str], typer.Option("--odata-url", help=f"CDSE OData catalogue root, searched for s1-grd and s2-l2a when the CDSE STAC API cannot be used. Default: ${ENV_ODATA_URL}, else CDSE's (above).")] = None,
    dem_collection: Annotated[Optional[str], typer.Option("--dem-collection", metavar="ID", help=f"STAC collection id of the Copernicus DEM GLO-30 on CDSE. Default: ${ENV_DEM_COLLECTION}, else the collection of the CDSE STAC /collections whose id or title names it.")] = None,
    max_items: Annotated[int, typer.Option("--max-items", help="Stop with an error when one collection's search serves more products than this (a mistaken area or period).")] = 5000,
    parcels_crs: Annotated[Optional[str], typer.Option("--parcels-crs", help="CRS of a parcels file that has none, e.g. EPSG:2154.")] = None,
    parcels_layer: Annotated[Optional[str], typer.Option("--parcels-layer", help="Layer of a multi-layer parcels file.")] = None,
) -> None:
    """Find Sentinel-1 GRD, Sentinel-2 and Copernicus DEM products over an area and a period (no account needed).

    Prints a summary per collection and writes the plan (a STAC ItemCollection JSON) that `plotsm download` takes.

    A search that finds nothing writes an empty plan, says so and exits 0; a service down exits 4, writing nothing.

    CDSE STAC: https://stac.dataspace.copernicus.eu/v1 (or --stac-url, or $PLOTSM_STAC_URL).

    CDSE OData, the fallback for s1-grd and s2-l2a when the STAC API fails: https://catalogue.dataspace.copernicus.eu/odata/v1 (or --odata-url, or $PLOTSM_ODATA_URL); its products are downloaded whole (zip).

    GEODES: https://geodes-portal.cnes.fr/api/stac (or --geodes-url, or $PLOTSM_GEODES_URL).

    Download the plan with `plotsm download ITEMS.json --out DIR`.
    """
    from plotsm.acquire import (
        CDSE_CATALOGUE_URL,
        CDSE_STAC_URL,
        GEODES_STAC_URL,
        search_products,
        summarise_all,
        write_plan,
    )
    from plotsm.acquire.search import prepare_search
    from plotsm.atomic import check_destination
    from plotsm.errors import StorageError, UsageError

    if max_items < 1:
        raise UsageError(f"--max-items {max_items}: expected a number of products >= 1.")
    area, query, urls = prepare_search(aoi, start, end, collections=collections, max_cloud=max_cloud,
                                       orbit_direction=orbit_direction, relative_orbit=relative_orbit,
                                       stac_url=stac_url or os.environ.get(ENV_STAC_URL),
                                       geodes_url=geodes_url or os.environ.get(ENV_GEODES_URL),
                                       parcels_crs=parcels_crs, layer=parcels_layer)
    if out_path.is_dir():
        raise StorageError(f"--out {out_path}: is a folder. Pass a file name, e.g. {out_path / 'items.json'}.")
    check_destination(out_path.parent if str(out_path.parent) else Path("."), "--out")
    x0, y0, x1, y1 = area.bbox
    where = (f"bbox {area.source}" if area.kind == "bbox" else
             f"{area.kind} {area.source}" + (f", {area.note}" if area.note else "")
             + f" (bbox {x0:.5f},{y0:.5f},{x1:.5f},{y1:.5f})")
    info(escape(f"searching {where}, {query.start} to {query.end}"))

    with progress() as bar:
        report = stage_reporter(bar, "searching {}")

        results = search_products(area, query, stac_url=urls.get("cdse", CDSE_STAC_URL),
                                  geodes_url=urls.get("geodes", GEODES_STAC_URL), progress=report,
                                  max_items=max_items,
                                  dem_collection=dem_collection or os.environ.get(ENV_DEM_COLLECTION) or None,
                                  odata_url=odata_url or os.environ.get(ENV_ODATA_URL) or CDSE_CATALOGUE_URL)
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
        if s.note and s.note not in lines:
            lines.append(s.note)
        if COLLECTIONS[s.name].sensor == "dem":
            lines.append(f"{s.name}: every tile over the area, whatever the period (a DEM has no season).")
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


def download(
    items: Annotated[Path, typer.Argument(metavar="ITEMS.json", help="The plan written by `plotsm search`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder the files are written to (created if needed). Its plotsm-download.json records each file downloaded and checked; a run into the same folder skips those.")],
    s1_partial: Annotated[bool, typer.Option("--s1-partial", help="Sentinel-1: only the VV measurement, its annotation, calibration and noise files and manifest.safe, as a <name>.SAFE folder, instead of the whole product zip (about half of it or less).")] = False,
    transfers: Annotated[int, typer.Option("--transfers", help="Files downloaded at once. CDSE allows 4 connections per account, so more is refused when the plan holds CDSE products.")] = 4,
    retries: Annotated[int, typer.Option("--retries", help="Tries again after a busy service (429, 503: its Retry-After is honoured), a refused connection or a cut stream, per file.")] = 5,
    retry_wait: Annotated[float, typer.Option("--retry-wait", metavar="SECONDS", help="First wait before trying again when the service gives no Retry-After; doubled each time, at most 60 s.")] = 2.0,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for a connection or for the next bytes.")] = 60.0,
    odata_url: Annotated[Optional[str], typer.Option("--odata-url", help=f"CDSE OData root, for files and product JSON. Default: ${ENV_ODATA_URL}, else CDSE's (above).")] = None,
    token_url: Annotated[Optional[str], typer.Option("--token-url", help=f"CDSE token endpoint. Default: ${ENV_TOKEN_URL}, else CDSE's (above).")] = None,
    geodes_url: Annotated[Optional[str], typer.Option("--geodes-url", help=f"GEODES STAC API root, as for search (downloads are under its /api). Default: ${ENV_GEODES_URL}, else GEODES'.")] = None,
) -> None:
    """Download the products of a plan (`plotsm search --out ITEMS.json`) into a folder: checked, resumable, recorded.

    S1 GRD: the whole product zip (CDSE OData), or with --s1-partial the VV files as a .SAFE folder. S2 L2A (CDSE): B04, B08, SCL, granule and product metadata, as a .SAFE folder. GEODES L2A/L3A: the product zip; offline ones are skipped and listed.

    Credentials: CDSE_USERNAME and CDSE_PASSWORD, else machine identity.dataspace.copernicus.eu in ~/.netrc (or $NETRC); GEODES_API_KEY, else machine geodes-portal.cnes.fr (its password). They are never printed or written.

    Each file goes to <name>.part, is resumed after a cut, checked (size, and MD5 or SHA when the catalogue gives one) and renamed. A file that fails is listed and the others go on; the command then exits 4: run it again to resume.

    CDSE OData: https://download.dataspace.copernicus.eu/odata/v1 (product JSON from catalogue.dataspace.copernicus.eu), or --odata-url, or $PLOTSM_ODATA_URL.

    CDSE token: https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token, or --token-url, or $PLOTSM_TOKEN_URL.
    """
    import threading
    import time

    from plotsm.acquire import (
        MANIFEST_NAME,
        DownloadError,
        DownloadSettings,
        Endpoints,
        human_size,
        netrc_path,
        prepare_download,
        read_credentials,
        read_plan,
    )

    settings = DownloadSettings(transfers=transfers, s1_partial=s1_partial, retries=retries, retry_wait_s=retry_wait,
                                timeout_s=timeout)
    endpoints = Endpoints.configure(odata_url=odata_url or os.environ.get(ENV_ODATA_URL),
                                    token_url=token_url or os.environ.get(ENV_TOKEN_URL),
                                    geodes_url=geodes_url or os.environ.get(ENV_GEODES_URL))
    plan = read_plan(items)
    credentials = read_credentials(os.environ, netrc_path(os.environ))

    def notify(line: str) -> None:  # waits, renewals, redirects: one line each, unless --quiet
        if not state.quiet:
            err.print(escape(line), highlight=False, soft_wrap=True)

    with prepare_download(plan, out_dir, credentials=credentials, endpoints=endpoints, settings=settings,
                          notify=notify) as job:
        for skip in job.skipped:
            out.print(escape(f"skipped {skip.item_id} {skip.what}: {skip.reason}"), highlight=False, soft_wrap=True)
        sizes = {j.relpath: j.expected.size for j in job.todo if j.expected.size is not None}
        n_unknown = len(job.todo) - len(sizes)
        notify(f"{len(job.todo)} files to download ({human_size(sum(sizes.values()), n_unknown)}), "
               f"{len(job.present)} already in {out_dir}")
        started = time.monotonic()
        with transfer_progress() as bar:
            task = bar.add_task("downloading", total=sum(sizes.values()) or None)
            done: dict[str, int] = {}
            lock = threading.Lock()

            def report(relpath: str, n_bytes: int, total: int) -> None:  # called from the transfer threads
                with lock:
                    done[relpath] = n_bytes
                    if total and relpath not in sizes:
                        sizes[relpath] = total
                    completed, known = sum(done.values()), sum(sizes.values())
                bar.update(task, completed=completed, total=known or None)

            try:
                result = job.run(progress=report)
            except KeyboardInterrupt:
                from plotsm.errors import Interrupted

                raise Interrupted(f"interrupted: the files completed so far are in {out_dir} and recorded in "
                                  f"{MANIFEST_NAME}; partly downloaded files are kept as .part. Run the same command "
                                  "again to resume them.") from None
        elapsed = time.monotonic() - started
    _print_download(result, elapsed, out_dir / MANIFEST_NAME, human_size)
    if result.failed:
        names = ", ".join(f.what for f in result.failed[:5]) + (" …" if len(result.failed) > 5 else "")
        raise DownloadError(f"{len(result.failed)} of {len(result.failed) + len(result.downloaded) + len(result.present)}"
                            f" files failed: {names}. Run the same command again: what was downloaded is kept and "
                            ".part files are resumed.")


def _print_download(result: Any, elapsed: float, manifest: Path, human_size: Any) -> None:
    """The report of a download on stdout: what was fetched and how it was checked, what was already there, the
    bytes --s1-partial saved, and each failure with its reason."""
    lines = []
    if result.downloaded:
        rate = f", {human_size(int(result.bytes_received / elapsed))}/s" if elapsed > 0 else ""
        lines.append(f"downloaded {len(result.downloaded)} files ({human_size(result.bytes_received)} received in "
                     f"{elapsed:.1f} s{rate})")
        lines.append("checked by " + ", ".join(f"{how}: {n}" for how, n in sorted(result.checks().items())))
    if result.present:
        lines.append(f"{len(result.present)} files already there and checked (in {manifest.name}): skipped")
    saving = result.partial
    if saving is not None and saving.whole_bytes:
        lines.append(f"--s1-partial: {human_size(saving.part_bytes)} for {saving.n_products - saving.n_unknown} "
                     f"products instead of {human_size(saving.whole_bytes)} for the whole products "
                     f"({human_size(saving.whole_bytes - saving.part_bytes)} saved)"
                     + (f"; {saving.n_unknown} products of unknown size not counted" if saving.n_unknown else ""))
    elif saving is not None:
        lines.append("--s1-partial: the whole products' sizes are unknown (their OData JSON could not be read)")
    for failure in result.failed:
        lines.append(f"failed: {failure.what}: {failure.reason}")
    if not result.failed:
        lines.append(f"all files are in {manifest.parent} (recorded in {manifest.name})")
    for line in lines:
        out.print(escape(line), highlight=False, soft_wrap=True)
