"""``plotsm run``: soil moisture of every parcel for one acquisition or a series, into the store.

The command parses and checks its options, reads the catalogue or the one acquisition (:mod:`plotsm.catalog`),
the parcels (:func:`plotsm.parcels.read_parcels`) and, with ``--apriori auto``, the a-priori state of each
acquisition (:func:`plotsm.apriori.decide_from_weather`), then hands the jobs to
:func:`plotsm.series.run_series` and prints what it reports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from plotsm.cli.console import err, info, out, state
from plotsm.cli.progress import progress
from plotsm.errors import PlotsmError

#: Options whose values are words, and the words each accepts (checked before anything is read).
CHOICES = (("--apriori", ("dry", "wet", "none", "auto")), ("--rule", ("center", "coverage")),
           ("--pair", ("month", "nearest")), ("--vv-unit", ("linear", "db")), ("--theta-unit", ("degree", "radian")),
           ("--parcels-update", ("add", "replace")), ("--weather", ("open-meteo",)),
           ("--inversion", ("single", "temporal")), ("--temporal-windows", ("all", "orbit")))


def run(
    parcels: Annotated[Path, typer.Option("--parcels", help="Parcels: shapefile, GeoPackage, GeoJSON or GeoParquet.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (holds plotsm.duckdb, parquet/ and caches).")],
    s1: Annotated[Optional[Path], typer.Option("--s1", help="Series: folder (or STAC ItemCollection JSON) of σ⁰ and θ rasters, one pair per acquisition.")] = None,
    vv: Annotated[Optional[Path], typer.Option("--vv", help="One acquisition: σ⁰ VV raster (linear power unless --vv-unit db).")] = None,
    theta: Annotated[Optional[Path], typer.Option("--theta", help="One acquisition: incidence angle raster, degrees.")] = None,
    date: Annotated[Optional[str], typer.Option("--date", help="One acquisition: date/time, ISO (UTC if no offset); default: the rasters' ACQUISITION_START/DATETIME_UTC tag or the time in their names. A date that contradicts the rasters is refused.")] = None,
    ndvi: Annotated[Optional[Path], typer.Option("--ndvi", help="NDVI raster (0–1); with --s1, a folder (or STAC JSON) of monthly composites ndvi_YYYY-MM.tif.")] = None,
    slope: Annotated[Optional[Path], typer.Option("--slope", help="Slope raster, degrees (optional).")] = None,
    pair: Annotated[str, typer.Option("--pair", help="With --s1: NDVI of the acquisition's calendar month (month) or the nearest composite (nearest).")] = "month",
    max_gap_days: Annotated[float, typer.Option("--max-gap-days", help="With --pair nearest: largest gap in days between an acquisition and its NDVI's centre; acquisitions without one are refused.")] = 45.0,
    parcels_update: Annotated[Optional[str], typer.Option("--parcels-update", help="When the store holds another parcel set: add (add the new parcels, keep the stored ones) or replace (the file becomes the set; removed and changed parcels keep their history). Without it a different set is refused.")] = None,
    apriori: Annotated[str, typer.Option("--apriori", help="A-priori soil state: dry, wet, none (→ full-range network) or auto (weather rule).")] = "none",
    weather_csv: Annotated[Optional[Path], typer.Option("--weather-csv", help="With --apriori auto: CSV of date, precipitation_mm[, temperature_c].")] = None,
    weather: Annotated[Optional[str], typer.Option("--weather", help="With --apriori auto: 'open-meteo' downloads daily precipitation at the parcels' centroid (network, opt-in).")] = None,
    weather_url: Annotated[str, typer.Option("--weather-url", help="Open-Meteo archive endpoint (a mirror or a self-hosted Open-Meteo).")] = "https://archive-api.open-meteo.com/v1/archive",
    wet_rain_mm: Annotated[float, typer.Option("--wet-rain-mm", help="Weather rule: at least this much rain …")] = 10.0,
    wet_window_days: Annotated[int, typer.Option("--wet-window-days", help="… in this many days before the acquisition → wet.")] = 3,
    dry_days: Annotated[int, typer.Option("--dry-days", help="Weather rule: this many days without rain before → dry.")] = 7,
    rain_day_mm: Annotated[float, typer.Option("--rain-day-mm", help="Weather rule: a day with less rain than this is dry.")] = 1.0,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local processes computing zonal statistics (default: one per two CPUs, since each reads with two threads; 1 = in this process).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask distributed scheduler address, e.g. tcp://10.0.0.5:8786 (instead of local processes).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute acquisitions already stored with the same inputs and settings.")] = False,
    no_parquet: Annotated[bool, typer.Option("--no-parquet", help="Do not write the Hive-partitioned Parquet dataset <out>/parquet/moisture.")] = False,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="Parcel id field (default: first unique id-like field).")] = None,
    parcels_crs: Annotated[Optional[str], typer.Option("--parcels-crs", help="CRS of parcels that lack one, e.g. EPSG:2154.")] = None,
    layer: Annotated[Optional[str], typer.Option("--parcels-layer", help="Layer of a multi-layer parcels file.")] = None,
    rule: Annotated[str, typer.Option("--rule", help="Pixel rule: center (pixel centres) or coverage (exact fractions).")] = "center",
    buffer_m: Annotated[float, typer.Option("--buffer", help="Inner buffer of the parcels in metres (e.g. -10 drops mixed edge pixels).")] = 0.0,
    vv_unit: Annotated[Optional[str], typer.Option("--vv-unit", help="Unit of σ⁰ rasters: linear or db (averaged in linear units either way). Default: the rasters' UNIT tag, a '_db' in the name, else linear; values that contradict it are refused.")] = None,
    theta_unit: Annotated[Optional[str], typer.Option("--theta-unit", help="Unit of incidence-angle rasters: degree or radian. Default: the UNIT tag, else degree.")] = None,
    ndvi_scale: Annotated[Optional[float], typer.Option("--ndvi-scale", help="NDVI = value · scale + offset, for integer NDVI rasters without a scale of their own (e.g. 0.0001 for NDVI × 10000). plotsm's uint8 and GDAL scale/offset tags are decoded without it.")] = None,
    ndvi_offset: Annotated[Optional[float], typer.Option("--ndvi-offset", help="Offset of --ndvi-scale (default 0).")] = None,
    ndvi_nodata: Annotated[Optional[str], typer.Option("--ndvi-nodata", help="Stored NDVI value that marks no data when the file does not say (e.g. 0 or 255), or 'none': exact zeros are real NDVI.")] = None,
    platform: Annotated[Optional[str], typer.Option("--platform", help="One acquisition: platform, e.g. S1A (default: the rasters' tags or names).")] = None,
    orbit_direction: Annotated[Optional[str], typer.Option("--orbit-direction", help="One acquisition: ascending or descending (default: the rasters' tags or names).")] = None,
    relative_orbit: Annotated[Optional[int], typer.Option("--relative-orbit", help="One acquisition: relative orbit number (default: the rasters' tags or names).")] = None,
    ndvi_max: Annotated[float, typer.Option("--ndvi-max", help="No estimate above this NDVI.")] = 0.75,
    min_pixels: Annotated[int, typer.Option("--min-pixels", help="No estimate below this many valid σ⁰ pixels.")] = 20,
    slope_max: Annotated[float, typer.Option("--slope-max", help="No estimate above this slope, degrees.")] = 10.0,
    models: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder of .onnx networks (default: shipped).")] = None,
    inversion: Annotated[Optional[str], typer.Option("--inversion", help="single: each date on its own (the network); temporal: then the joint inversion of each parcel's series over its window (see --temporal-windows), which rewrites the ok estimates and their uncertainty. Default: temporal.")] = None,
    temporal_windows: Annotated[Optional[str], typer.Option("--temporal-windows", help="With --inversion temporal: all: one window of every orbit's acquisitions, with moisture dynamics fitted to the series (the default; docs/temporal.md); orbit: a window per relative orbit, same settings.")] = None,
) -> None:
    """Soil moisture of every parcel for one acquisition (--vv and --theta, optionally --date) or a series (--s1).

    Results in <out>/plotsm.duckdb and <out>/parquet/moisture. Acquisitions already stored with the same inputs and
    settings are skipped, so an interrupted run resumes where it stopped."""
    from plotsm.errors import UsageError
    from plotsm.apriori import AprioriRule
    from plotsm.catalog import run_acquisitions
    from dataclasses import replace

    from plotsm.inversion import DEFAULT_INVERSION, RUN_TEMPORAL, MaskSettings
    from plotsm.parcels import read_parcels
    from plotsm.pipeline import RunSettings
    from plotsm.raster import parse_nodata
    from plotsm.series import plan_jobs, run_series

    given = {"--apriori": apriori, "--rule": rule, "--pair": pair, "--vv-unit": vv_unit or "linear",
             "--theta-unit": theta_unit or "degree", "--parcels-update": parcels_update or "add",
             "--weather": weather or "open-meteo", "--inversion": inversion or DEFAULT_INVERSION,
             "--temporal-windows": temporal_windows or "all"}
    for name, allowed in CHOICES:
        if given[name] not in allowed:
            raise UsageError(f"{name} {given[name]!r}: expected one of {', '.join(allowed)}")
    acqs, unit = run_acquisitions(ndvi, s1=s1, vv=vv, theta=theta, date=date, slope=slope, pair=pair,  # type: ignore[arg-type]
                                  max_gap_days=max_gap_days, vv_unit=vv_unit, platform=platform,  # type: ignore[arg-type]
                                  orbit_direction=orbit_direction, relative_orbit=relative_orbit)
    if apriori != "auto" and (weather_csv is not None or weather is not None):
        raise UsageError("--weather-csv / --weather are used with --apriori auto only.")
    settings = RunSettings(
        apriori="none" if apriori == "auto" else apriori, rule=rule, vv_unit=unit, buffer_m=buffer_m,  # type: ignore[arg-type]
        masks=MaskSettings(ndvi_max=ndvi_max, min_valid_pixels=min_pixels, slope_max_deg=slope_max),
        models_dir=str(models) if models else None, theta_unit=theta_unit,  # type: ignore[arg-type]
        ndvi_scale=ndvi_scale, ndvi_offset=ndvi_offset, ndvi_nodata=parse_nodata(ndvi_nodata, "--ndvi-nodata"),
        inversion=given["--inversion"],  # type: ignore[arg-type]
        temporal=replace(RUN_TEMPORAL, by_orbit=given["--temporal-windows"] == "orbit"),
    )
    p = read_parcels(parcels, id_field=id_field, parcels_crs=parcels_crs, layer=layer)
    for message in p.report.messages:
        info(f"parcels: {message}")
    from plotsm.atomic import check_destination

    check_destination(out_dir)  # created by the store once the inputs have passed their checks
    rule_of_weather = AprioriRule(wet_rain_mm=wet_rain_mm, wet_window_days=wet_window_days, dry_days=dry_days,
                                  rain_day_mm=rain_day_mm)
    jobs = plan_jobs(acqs, settings, apriori, rule=rule_of_weather, area=p.gdf, weather_csv=weather_csv, weather=weather, url=weather_url,
                     cache_dir=out_dir / "cache" / "weather", announce=_announce_weather)
    committed: list[str] = []
    with progress() as bar:
        task = bar.add_task("run", total=None)

        def cb(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        def event(kind: str, acquisition_id: str, detail: str) -> None:
            if kind == "committed":
                committed.append(acquisition_id)
            if kind == "failed":
                err.print(f"[red]✗[/] {acquisition_id} failed: {escape(detail)}", highlight=False)
            elif not state.quiet:
                mark = {"committed": "[green]✓[/]", "skipped": "[dim]-[/]", "revised": "[blue]↻[/]"}[kind]
                out.print(f"{mark} {acquisition_id} {kind}: {escape(detail)}", highlight=False)

        try:
            report = run_series(p, jobs, out_dir, workers=workers, scheduler=scheduler, force=force,
                                parquet=not no_parquet, parcels_update=parcels_update,  # type: ignore[arg-type]
                                progress=cb, event=event, command=" ".join(sys.argv))
        except KeyboardInterrupt:
            raise _interrupted(out_dir, committed, len(jobs)) from None
    if not state.quiet:
        _print_series_summary(report)
        out.print(f"results in {out_dir / 'plotsm.duckdb'}; try: plotsm sql latest --out {out_dir}")
    if report.failed:
        reasons = "; ".join(f"{a}: {r}" for a, r in report.failed[:3]) + (" …" if len(report.failed) > 3 else "")
        raise (report.failure_kind or PlotsmError)(
            f"{len(report.failed)} of {len(jobs)} acquisition(s) failed — {reasons}. The others are stored; fix the "
            "inputs and run the same command again (stored acquisitions are skipped).")


def _announce_weather(lat: float, lon: float, start: Any, end: Any) -> None:
    info(f"weather: Open-Meteo archive, daily precipitation at {lat:.4f} N, {lon:.4f} E, {start} – {end}")


def _interrupted(out_dir: Path, committed: list[str], n_jobs: int) -> PlotsmError:
    """The message of a run stopped by Ctrl-C or SIGTERM: what is stored, and that re-running resumes."""
    from plotsm.errors import Interrupted

    stored = "?"
    try:
        from plotsm.store import Store

        with Store(out_dir, read_only=True) as store:
            stored = str(store.sql("SELECT count(*) AS n FROM acquisitions").column(0)[0].as_py())
    except PlotsmError:
        pass
    return Interrupted(f"interrupted: {len(committed)} of {n_jobs} acquisition(s) committed by this run, {stored} "
                       f"stored in {out_dir / 'plotsm.duckdb'}. Each acquisition is committed whole or not at all: "
                       "run the same command again to resume (stored acquisitions are skipped).")


def _print_series_summary(report: Any) -> None:
    table = Table(title=f"plotsm run: {report.seconds:.1f} s", show_header=True)
    table.add_column("acquisitions")
    table.add_column("count", justify="right")
    table.add_column("detail")
    counts = ", ".join(f"{k} {v}" for k, v in report.status_counts.items()) or "-"
    table.add_row("processed", str(len(report.processed)), f"parcel statuses: {counts}")
    table.add_row("skipped", str(len(report.skipped)), "already stored with the same inputs and settings"
                  if report.skipped else "-")
    if report.revised:
        n_rows = sum(w.n_revised for w in report.revised)
        table.add_row("temporal", str(len(report.revised)), f"window(s) inverted jointly: {n_rows} estimates rewritten")
    table.add_row("failed", str(len(report.failed)), "-" if not report.failed else "")
    for acq_id, reason in report.failed:
        table.add_row("", "", f"{acq_id}: {escape(reason)}")
    out.print(table)
