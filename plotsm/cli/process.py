"""``plotsm process``: parcels and a season → moisture, every stage resumable (:mod:`plotsm.process`).

The command merges the options with ``--config plotsm.toml`` (the command line wins), reads the services and
the credentials from the environment as ``search`` and ``download`` do, calls the library and prints its report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from plotsm.cli.acquire import (
    ENV_DEM_COLLECTION,
    ENV_GEODES_URL,
    ENV_ODATA_URL,
    ENV_STAC_URL,
    ENV_TOKEN_URL,
)
from plotsm.cli.console import err, info, out, state
from plotsm.cli.progress import progress, stage_reporter
from plotsm.cli.segment import parse_classes

#: Defaults of the options that are not given on the command line nor in --config.
DEFAULTS: dict[str, Any] = {
    "collections": "s1-grd,s2-l2a", "max_cloud": 80.0, "max_items": 5000, "margin": 200.0, "res": 10.0,
    "keep_raw": True, "dry_run": False, "s1_partial": False, "transfers": 4, "retries": 5, "retry_wait": 2.0,
    "timeout": 60.0, "apriori": "none", "weather_url": "https://archive-api.open-meteo.com/v1/archive",
    "wet_rain_mm": 10.0, "wet_window_days": 3, "dry_days": 7, "rain_day_mm": 1.0, "rule": "center", "buffer": 0.0,
    "ndvi_max": 0.75, "min_pixels": 20, "slope_max": 10.0, "workers": 1, "mask_classes": "40", "mask_min_frac": 0.5,
}


def process(
    ctx: typer.Context,
    parcels: Annotated[Optional[Path], typer.Option("--parcels", help="Parcels (shapefile, GeoPackage, GeoJSON, GeoParquet): the area searched, the grid (their extent + --margin in their UTM zone) and the parcels of the series.")] = None,
    area: Annotated[Optional[str], typer.Option("--area", metavar="W,S,E,N|FILE", help="Without --parcels: the area (bbox in degrees or a GeoJSON file) searched and gridded; its plots are segmented from the monthly NDVI (as plotsm segment) into <out>/plots.gpkg, the parcels of the series.")] = None,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="With --area: agricultural mask of the plots, as for segment (land-cover raster with --mask-classes, or a vector layer).")] = None,
    mask_classes: Annotated[Optional[str], typer.Option("--mask-classes", help="With --area: as for segment (default 40, WorldCover cropland).")] = None,
    mask_min_frac: Annotated[Optional[float], typer.Option("--mask-min-frac", help="With --area: as for segment (default 0.5).")] = None,
    min_area_ha: Annotated[Optional[float], typer.Option("--min-area-ha", help="With --area: smallest plot, hectares, as for segment (default 0.1).")] = None,
    merge_ndvi: Annotated[Optional[float], typer.Option("--merge-ndvi", help="With --area: as for segment (default 0.05).")] = None,
    start: Annotated[Optional[str], typer.Option("--start", metavar="YYYY-MM-DD", help="First day of the season (UTC), included.")] = None,
    end: Annotated[Optional[str], typer.Option("--end", metavar="YYYY-MM-DD", help="Last day of the season (UTC), included.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Folder of the run: items.json, raw/, s1/, ndvi/, composites/, slope.tif, process.json, plotsm.duckdb, parquet/, moisture.parquet. Run the same command again to resume.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of options (keys: the long option names, e.g. keep-raw = false); the command line wins; unknown keys are refused.")] = None,
    dry_run: Annotated[Optional[bool], typer.Option("--dry-run", help="Search, write <out>/items.json and print the products, their sizes and the disk needed; nothing else is written.")] = None,
    keep_raw: Annotated[Optional[bool], typer.Option("--keep-raw/--no-keep-raw", help="Keep the downloaded products (default), or delete each once its analysis-ready rasters are written.")] = None,
    collections: Annotated[Optional[str], typer.Option("--collections", help="As for search: s1-grd, s2-l2a, s2-l2a-maja, s2-l3a, dem. Default: s1-grd,s2-l2a, plus dem (the Copernicus DEM tiles over the area) when --dem is not given.")] = None,
    max_cloud: Annotated[Optional[float], typer.Option("--max-cloud", help="As for search (default 80).")] = None,
    orbit_direction: Annotated[Optional[str], typer.Option("--orbit-direction", help="As for search.")] = None,
    relative_orbit: Annotated[Optional[int], typer.Option("--relative-orbit", help="As for search.")] = None,
    max_items: Annotated[Optional[int], typer.Option("--max-items", help="As for search (default 5000).")] = None,
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help=f"As for search (default ${ENV_STAC_URL}, else CDSE's).")] = None,
    geodes_url: Annotated[Optional[str], typer.Option("--geodes-url", help=f"As for search and download (default ${ENV_GEODES_URL}, else GEODES').")] = None,
    odata_url: Annotated[Optional[str], typer.Option("--odata-url", help=f"As for download (default ${ENV_ODATA_URL}, else CDSE's).")] = None,
    token_url: Annotated[Optional[str], typer.Option("--token-url", help=f"As for download (default ${ENV_TOKEN_URL}, else CDSE's).")] = None,
    s1_partial: Annotated[Optional[bool], typer.Option("--s1-partial", help="As for download: only the VV files of S1 products.")] = None,
    transfers: Annotated[Optional[int], typer.Option("--transfers", help="As for download (default 4).")] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", help="As for download (default 5).")] = None,
    retry_wait: Annotated[Optional[float], typer.Option("--retry-wait", help="As for download (default 2 s).")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="As for download (default 60 s).")] = None,
    dem: Annotated[Optional[Path], typer.Option("--dem", help="Local DEM GeoTIFF (e.g. SRTM): terrain geocoding of S1 and the slope. Without it, the Copernicus DEM GLO-30 tiles of the plan (collection dem, searched by default) are downloaded and mosaicked for both; without either: GCP geocoding and no slope.")] = None,
    dem_collection: Annotated[Optional[str], typer.Option("--dem-collection", metavar="ID", help=f"As for search (default ${ENV_DEM_COLLECTION}, else found in the CDSE STAC /collections).")] = None,
    dem_nodata: Annotated[Optional[str], typer.Option("--dem-nodata", metavar="VALUE|none", help="As for s1 calibrate.")] = None,
    geoid_offset: Annotated[Optional[float], typer.Option("--geoid-offset", help="As for s1 calibrate: metres added to the DEM's heights to make them ellipsoidal (the geoid undulation at the site: EGM96 for SRTM, EGM2008 for the Copernicus DEM).")] = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="Margin around the parcels' extent, metres (default 200).")] = None,
    res: Annotated[Optional[float], typer.Option("--res", help="Pixel size of the grid, metres (default 10).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local processes for the calibration, the NDVI and the series (default 1).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask distributed scheduler address (tcp://HOST:PORT) for the same.")] = None,
    apriori: Annotated[Optional[str], typer.Option("--apriori", help="As for run: dry, wet, none (default) or auto (weather rule).")] = None,
    weather_csv: Annotated[Optional[Path], typer.Option("--weather-csv", help="As for run, with --apriori auto.")] = None,
    weather: Annotated[Optional[str], typer.Option("--weather", help="As for run: open-meteo, with --apriori auto.")] = None,
    weather_url: Annotated[Optional[str], typer.Option("--weather-url", help="As for run.")] = None,
    wet_rain_mm: Annotated[Optional[float], typer.Option("--wet-rain-mm", help="As for run.")] = None,
    wet_window_days: Annotated[Optional[int], typer.Option("--wet-window-days", help="As for run.")] = None,
    dry_days: Annotated[Optional[int], typer.Option("--dry-days", help="As for run.")] = None,
    rain_day_mm: Annotated[Optional[float], typer.Option("--rain-day-mm", help="As for run.")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="As for run.")] = None,
    parcels_crs: Annotated[Optional[str], typer.Option("--parcels-crs", help="As for run.")] = None,
    parcels_layer: Annotated[Optional[str], typer.Option("--parcels-layer", help="As for run.")] = None,
    rule: Annotated[Optional[str], typer.Option("--rule", help="As for run: center or coverage.")] = None,
    buffer: Annotated[Optional[float], typer.Option("--buffer", help="As for run.")] = None,
    ndvi_max: Annotated[Optional[float], typer.Option("--ndvi-max", help="As for run.")] = None,
    min_pixels: Annotated[Optional[int], typer.Option("--min-pixels", help="As for run.")] = None,
    slope_max: Annotated[Optional[float], typer.Option("--slope-max", help="As for run.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option("--models-dir", help="As for run.")] = None,
) -> None:
    """From parcels (or an area, segmented into plots) and a season to moisture in one command, resumable.

    search → download → s1 calibrate and s2 ndvi on one grid → monthly composites (filled in time) → slope (--dem,
    else the downloaded Copernicus DEM tiles) → [with --area: segment the monthly NDVI into plots] → run → export
    (GeoParquet).

    Every stage skips what is made, so after a failure or Ctrl-C the same command resumes. A product that fails
    is listed with its reason and the others go on; the command then exits with the most serious cause's code.
    Credentials as for download (CDSE_USERNAME / CDSE_PASSWORD or ~/.netrc; GEODES_API_KEY)."""
    from plotsm.errors import UsageError
    from plotsm.process import read_config

    names = set(ctx.params) - {"config"}
    from_file = read_config(config, names, {"out": "out_dir"}) if config is not None else {}
    o: dict[str, Any] = {}
    for name in names:
        source = ctx.get_parameter_source(name)
        value = ctx.params[name]
        if getattr(source, "name", "") != "COMMANDLINE" and name in from_file:  # the command line wins
            value = _cast(name, from_file[name], config)
        o[name] = DEFAULTS.get(name) if value is None else value
    if ctx.params["collections"] is None and "collections" not in from_file:
        # the default: the DEM tiles too when no --dem replaces them (safe: a search with --dem is unchanged)
        o["collections"] = DEFAULTS["collections"] + ("" if o["dem"] is not None else ",dem")
    missing = [f"--{n.replace('_', '-')}" for n in ("start", "end", "out_dir") if o[n] is None]
    if o["parcels"] is None and o["area"] is None:
        missing.insert(0, "--parcels (or --area)")
    if missing:
        raise UsageError(f"{', '.join(missing).replace('--out-dir', '--out')}: required (on the command line or in "
                         "--config).")
    settings = _settings(o)
    if o["dry_run"]:
        _dry_run(settings)
        return
    _run(settings)


def _cast(name: str, value: Any, config: Path | None) -> Any:
    """A value of the --config file as the option's type (Path, bool, int, float, str), or a UsageError."""
    import typing

    from plotsm.errors import UsageError

    hint = typing.get_type_hints(process)[name]
    kind = next(a for a in typing.get_args(hint) if a is not type(None))
    ok = (isinstance(value, bool) if kind is bool else isinstance(value, int) and not isinstance(value, bool)
          if kind is int else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, str))
    if not ok:
        raise UsageError(f"--config {config}: {name.replace('_', '-')} = {value!r}: expected "
                         f"{ {bool: 'true or false', int: 'an integer', float: 'a number'}.get(kind, 'a string') }.")
    return kind(value)


def _settings(o: dict[str, Any]) -> Any:
    from plotsm.acquire import DownloadSettings, Endpoints, netrc_path, read_credentials
    from plotsm.apriori import AprioriRule
    from plotsm.cli.run import CHOICES
    from plotsm.errors import UsageError
    from plotsm.inversion import MaskSettings
    from plotsm.pipeline import RunSettings
    from plotsm.process import ProcessSettings
    from plotsm.sources.dem import as_dem_nodata

    for name, allowed in CHOICES:
        key = name.removeprefix("--").replace("-", "_")
        if key in o and o[key] is not None and o[key] not in allowed:
            raise UsageError(f"{name} {o[key]!r}: expected one of {', '.join(allowed)}")
    if o["apriori"] != "auto" and (o["weather_csv"] is not None or o["weather"] is not None):
        raise UsageError("--weather-csv / --weather are used with --apriori auto only.")
    if o["dem_nodata"] is not None and o["dem"] is None:
        raise UsageError("--dem-nodata applies to the heights of --dem; pass --dem too, or drop --dem-nodata.")
    run_settings = RunSettings(
        apriori="none" if o["apriori"] == "auto" else o["apriori"], rule=o["rule"], buffer_m=o["buffer"],
        masks=MaskSettings(ndvi_max=o["ndvi_max"], min_valid_pixels=o["min_pixels"], slope_max_deg=o["slope_max"]),
        models_dir=str(o["models_dir"]) if o["models_dir"] else None)
    return ProcessSettings(
        parcels=o["parcels"], start=str(o["start"]), end=str(o["end"]), out=o["out_dir"],
        collections=o["collections"], max_cloud=o["max_cloud"], orbit_direction=o["orbit_direction"],
        relative_orbit=o["relative_orbit"], max_items=o["max_items"],
        dem_collection=o["dem_collection"] or os.environ.get(ENV_DEM_COLLECTION) or None,
        stac_url=o["stac_url"] or os.environ.get(ENV_STAC_URL), geodes_url=o["geodes_url"] or os.environ.get(ENV_GEODES_URL),
        endpoints=Endpoints.configure(odata_url=o["odata_url"] or os.environ.get(ENV_ODATA_URL),
                                      token_url=o["token_url"] or os.environ.get(ENV_TOKEN_URL),
                                      geodes_url=o["geodes_url"] or os.environ.get(ENV_GEODES_URL)),
        download=DownloadSettings(transfers=o["transfers"], s1_partial=o["s1_partial"], retries=o["retries"],
                                  retry_wait_s=o["retry_wait"], timeout_s=o["timeout"]),
        credentials=read_credentials(os.environ, netrc_path(os.environ)),
        dem=o["dem"], dem_nodata=as_dem_nodata(o["dem_nodata"]), geoid_offset_m=o["geoid_offset"],
        margin_m=o["margin"], res=o["res"], keep_raw=o["keep_raw"], workers=o["workers"], scheduler=o["scheduler"],
        run_settings=run_settings, apriori=o["apriori"],
        rule=AprioriRule(wet_rain_mm=o["wet_rain_mm"], wet_window_days=o["wet_window_days"], dry_days=o["dry_days"],
                         rain_day_mm=o["rain_day_mm"]),
        weather_csv=o["weather_csv"], weather=o["weather"], weather_url=o["weather_url"], id_field=o["id_field"],
        parcels_crs=o["parcels_crs"], parcels_layer=o["parcels_layer"], area=o["area"],
        segment=_segment_settings(o), mask=o["mask"], mask_classes=tuple(parse_classes(o["mask_classes"])),
        mask_min_frac=o["mask_min_frac"])


def _segment_settings(o: dict[str, Any]) -> Any:
    from plotsm.segment import SegmentSettings

    given = {k: o[k] for k in ("min_area_ha", "merge_ndvi") if o[k] is not None}
    if o["parcels"] is not None and (given or o["mask_classes"] != "40" or o["mask_min_frac"] != 0.5):
        from plotsm.errors import UsageError

        raise UsageError("--mask-classes, --mask-min-frac, --min-area-ha and --merge-ndvi shape plots segmented "
                         "with --area; with --parcels there is nothing to segment. Drop them.")
    return SegmentSettings(**given, workers=max(1, o["workers"] or 1))


def _dry_run(settings: Any) -> None:
    from plotsm.acquire import human_size
    from plotsm.process import dry_run

    plan = dry_run(settings)
    out.print(escape(f"grid: {plan.grid}"), highlight=False, soft_wrap=True)
    for name, n, done, size, unknown in plan.collections:
        out.print(escape(f"{name}: {n} products ({done} already made), {human_size(size, unknown)} to download"),
                  highlight=False, soft_wrap=True)
    out.print(escape(f"disk needed: raw {human_size(plan.raw_bytes, plan.raw_unknown)} + outputs about "
                     f"{human_size(plan.output_bytes)} (uncompressed float32 rasters; less once compressed)"),
              highlight=False, soft_wrap=True)
    out.print(escape(f"wrote {plan.plan} (dry run: nothing else written)"), highlight=False, soft_wrap=True)


def _run(settings: Any) -> None:
    from plotsm.errors import Interrupted, PlotsmError
    from plotsm.process import process

    def notify(line: str) -> None:
        if not state.quiet:
            err.print(escape(line), highlight=False, soft_wrap=True)

    def event(kind: str, acquisition_id: str, detail: str) -> None:
        if kind == "failed":
            err.print(f"[red]✗[/] {acquisition_id} failed: {escape(detail)}", highlight=False)
        elif not state.quiet:
            out.print(f"{acquisition_id} {kind}: {escape(detail)}", highlight=False)

    with progress() as bar:
        report = stage_reporter(bar)

        try:
            result = process(settings, notify=notify, progress=report, event=event, download_progress=report)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: what was made is in {settings.out} (recorded in process.json, stored "
                              "acquisitions in plotsm.duckdb). Run the same command again to resume.") from None
    lines = [f"grid: {result.grid}", "plan: " + ", ".join(f"{k} {v}" for k, v in result.n_items.items())]
    for stage in ("s1", "ndvi"):
        lines.append(f"{stage}: {len(result.made.get(stage, []))} made, {len(result.skipped.get(stage, []))} "
                     "already there")
    if result.raw_removed:
        lines.append(f"--no-keep-raw: {len(result.raw_removed)} raw products deleted")
    if result.composites:
        lines.append(f"composites: {', '.join(result.composites)}")
    if result.series is not None:
        s = result.series
        lines.append(f"series: {len(s.processed)} acquisitions stored, {len(s.skipped)} already stored, "
                     f"{len(s.failed)} failed")
    if result.plots is not None:
        lines.append(f"plots: {result.plots}")
    if result.export is not None:
        lines.append(f"wrote {result.export}")
    for f in result.failed:
        lines.append(f"failed: {f.item_id} ({f.stage}): {f.reason}")
    for line in lines:
        out.print(escape(line), highlight=False, soft_wrap=True)
    kind = result.failure_kind
    if kind is not None:
        names = [f"{f.item_id} ({f.stage})" for f in result.failed]
        if result.series is not None:
            names += [f"{a} (series)" for a, _ in result.series.failed]
        shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        raise (kind or PlotsmError)(f"{len(names)} product(s) or acquisition(s) failed: {shown}. The others are "
                                    "made; fix the cause and run the same command again (what is made is skipped).")
    info(f"results in {settings.out / 'plotsm.duckdb'} and {settings.out / 'moisture.parquet'}")
