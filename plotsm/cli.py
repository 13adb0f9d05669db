"""plotsm command-line interface (typer).

The only module that prints, reads the environment or chooses an exit code: library code raises
:class:`plotsm.errors.PlotsmError` subclasses and this module turns them into a one-line message on stderr and
the error's exit code (0 ok, 1 bug, 2 usage, 3 configuration, 4 input data, 5 model, 6 storage).
Progress goes to stderr (rich); results to stdout.
"""

from __future__ import annotations

import errno
import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from plotsm import __version__
from plotsm.errors import PlotsmError

app = typer.Typer(
    name="plotsm",
    help="Plot-scale surface soil moisture from Sentinel-1 and Sentinel-2 (S2MP method).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="Inspect and evaluate the inversion networks.", no_args_is_help=True)
app.add_typer(model_app, name="model")

out = Console()
err = Console(stderr=True)


def _flags_take_no_value() -> None:
    """typer 0.2x prints "<bool>" beside every on/off flag (--force, --help) in the help, as if it took a value;
    flags take none, so show nothing there (display only: parsing is untouched)."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "plotsm_patched", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich.plotsm_patched = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


class _State:
    quiet = False


state = _State()


def _progress() -> Any:
    """Progress on stderr: a rich bar on a terminal; in a log (stderr not a terminal, e.g. a batch job) one plain
    line per task at most every :data:`LOG_PROGRESS_SECONDS` and at the end; nothing with --quiet."""
    if not err.is_terminal and not state.quiet:
        return _LogProgress()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=state.quiet or not err.is_terminal,
        transient=False,
    )


#: Seconds between two progress lines written to a log.
LOG_PROGRESS_SECONDS = 15.0


class _LogTask:
    def __init__(self, description: str, total: float | None) -> None:
        self.description, self.total, self.completed = description, total, 0.0
        self.started = self.last = time.monotonic()
        self.reported = ""


class _LogProgress:
    """The part of rich's Progress API the commands use, writing plain lines for logs."""

    def __init__(self) -> None:
        self.tasks: list[_LogTask] = []

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.tasks:
            if exc[0] is None and task.total and task.completed >= task.total:
                self._line(task, force=True)

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        self.tasks.append(_LogTask(description, total))
        return len(self.tasks) - 1

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               description: str | None = None, advance: float | None = None, **_: Any) -> None:
        task = self.tasks[task_id]
        task.total = total if total is not None else task.total
        task.description = description if description is not None else task.description
        task.completed = completed if completed is not None else task.completed + (advance or 0)
        self._line(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _line(self, task: _LogTask, force: bool = False) -> None:
        now = time.monotonic()
        done = bool(task.total) and task.completed >= (task.total or 0)
        if not (force or done or now - task.last >= LOG_PROGRESS_SECONDS):
            return
        if task.total:
            text = f"{task.description}: {task.completed:g}/{task.total:g} ({100 * task.completed / task.total:.0f} %)"
        else:
            text = f"{task.description}: {task.completed:g}"
        if text == task.reported:
            return
        elapsed = now - task.started
        eta = ""
        if task.total and 0 < task.completed < task.total:
            eta = f", about {elapsed * (task.total - task.completed) / task.completed:.0f} s left"
        err.print(f"{text}, {elapsed:.0f} s{eta}", highlight=False, soft_wrap=True)
        task.last, task.reported = now, text


def _version(value: bool) -> None:
    if value:
        out.print(f"plotsm {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or informational messages.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    state.quiet = quiet


def _info(message: str) -> None:
    if not state.quiet:
        err.print(message)


# --------------------------------------------------------------------------------------------- train / model


@app.command()
def train(
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="Folder for the .onnx networks and model cards (default: the shipped models/).")
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=100, help="Training samples per network.")] = 60_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of databases and initial weights.")] = 42,
    network: Annotated[
        Optional[list[str]], typer.Option("--network", "-n", help="Network(s) to train: dry, wet, all (default: all three).")
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Measure each network against the bound and write it in its card.")
    ] = True,
) -> None:
    """Regenerate the inversion networks (synthetic database, Levenberg–Marquardt, ONNX export, model cards)."""
    from plotsm.errors import UsageError
    from plotsm.model.publish import publish_all
    from plotsm.model.synth import NETWORK_MV_RANGES
    from plotsm.resources import models_dir

    names = tuple(network) if network else tuple(NETWORK_MV_RANGES)
    unknown = [n for n in names if n not in NETWORK_MV_RANGES]
    if unknown:
        raise UsageError(f"--network {', '.join(unknown)}: unknown; choose among {', '.join(NETWORK_MV_RANGES)}")
    target = out_dir if out_dir is not None else models_dir()
    with _progress() as bar:
        tasks = {n: bar.add_task(f"train {n}", total=None) for n in names}

        def cb(name: str, i: int, total: int, valid: float) -> None:
            bar.update(tasks[name], completed=i, description=f"train {name} (valid RMSE {valid:.3f})")

        nets = publish_all(target, names=names, n_train=samples, seed=seed, progress=cb, evaluation=None if not evaluate else _default_eval())
        for n in names:
            bar.update(tasks[n], total=bar.tasks[tasks[n]].completed)
    table = Table(title=f"networks written to {target}")
    for col in ("network", "mv range", "validation RMSE", "bias", "R²", "iterations"):
        table.add_column(col)
    for p in nets:
        v = p.metadata["plotsm.validation"]
        lo, hi = p.metadata["plotsm.mv_range_pct"]
        table.add_row(p.name, f"{lo:g}–{hi:g}", f"{v['rmse_pct']:.3f}", f"{v['bias_pct']:+.3f}", f"{v['r2']:.3f}",
                      str(p.metadata["plotsm.training"]["iterations"]))
    out.print(table)


def _default_eval() -> Any:
    from plotsm.model.evaluate import EvalSettings

    return EvalSettings()


@model_app.command("list")
def model_list(
    models: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder of .onnx networks (default: shipped).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
) -> None:
    """List the available networks with their range, inputs and validation metrics."""
    from plotsm.model.infer import available_networks, load_network

    nets = {n: load_network(p) for n, p in available_networks(models).items()}
    if as_json:
        out.print_json(json.dumps({n: net.metadata for n, net in nets.items()}))
        return
    table = Table()
    for col in ("network", "mv range (vol.%)", "validation RMSE", "version", "file"):
        table.add_column(col)
    for n, net in nets.items():
        lo, hi = net.mv_range_pct
        v = net.metadata.get("plotsm.validation", {})
        table.add_row(n, f"{lo:g}–{hi:g}", f"{v.get('rmse_pct', float('nan')):.3f}", net.version, str(net.path))
    out.print(table)


@model_app.command("evaluate")
def model_evaluate(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    network: Annotated[Optional[list[str]], typer.Option("--network", "-n", help="Network(s) to evaluate (default: all available).")] = None,
    models: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder of .onnx networks (default: shipped).")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1000, help="Fresh noisy test samples per network.")] = 100_000,
    reference: Annotated[int, typer.Option("--reference", min=10_000, help="Noisy samples of the k-NN posterior-mean bound.")] = 1_000_000,
    k: Annotated[int, typer.Option("--k", min=1, help="Neighbours of the k-NN posterior-mean estimate.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the evaluation databases.")] = 1292,
    check: Annotated[bool, typer.Option("--check", help="Exit 5 when a network's RMSE exceeds 1.03 × its bound.")] = False,
) -> None:
    """Accuracy of each network on fresh noisy samples: RMSE, bias, R², by NDVI and mv band, and the bound."""
    from plotsm.errors import ModelError
    from plotsm.model.evaluate import TARGET_RATIO, EvalSettings, evaluate
    from plotsm.model.infer import available_networks, load_network
    from plotsm.model.synth import SynthSettings

    names = list(network) if network else list(available_networks(models))
    settings = EvalSettings(n_test=samples, n_reference=reference, k=k, seed=seed)
    results: dict[str, Any] = {}
    with _progress() as bar:
        task = bar.add_task("evaluate", total=len(names))
        for name in names:
            bar.update(task, description=f"evaluate {name}")
            net = load_network(name if models is None else Path(models) / f"{name}.onnx")
            synth = SynthSettings.from_dict(net.metadata["plotsm.synth_settings"])
            results[name] = evaluate(net.predict, synth, settings)
            results[name]["mv_range_pct"] = list(net.mv_range_pct)
            bar.advance(task)
    if as_json:
        out.print_json(json.dumps(results))
    else:
        _print_evaluation(results)
    failed = [n for n, r in results.items() if not r["meets_target"]]
    if check and failed:
        raise ModelError(f"networks {', '.join(failed)}: RMSE above {TARGET_RATIO} × the posterior-mean bound")


def _print_evaluation(results: dict[str, Any]) -> None:
    table = Table(title="Inversion accuracy on fresh noisy synthetic samples (vol.%)")
    for col in ("network", "range", "RMSE", "bias", "R²", "bound", "RMSE/bound", "target ≤1.03"):
        table.add_column(col, justify="right")
    for n, r in results.items():
        lo, hi = r["mv_range_pct"]
        table.add_row(n, f"{lo:g}–{hi:g}", f"{r['rmse']:.3f}", f"{r['bias']:+.3f}", f"{r['r2']:.3f}",
                      f"{r['bound_rmse']:.3f}", f"{r['ratio_to_bound']:.3f}", "met" if r["meets_target"] else "NOT met")
    out.print(table)
    for kind, label in (("by_ndvi", "NDVI band"), ("by_mv", "mv band, vol.%")):
        t = Table(title=f"RMSE by {label}: network / bound")
        t.add_column(label)
        for n in results:
            t.add_column(n, justify="right")
        bands = sorted({(b["from"], b["to"]) for r in results.values() for b in r[kind]})
        cells = {(n, b["from"], b["to"]): f"{b['rmse']:.2f} / {b['bound_rmse']:.2f}" for n, r in results.items() for b in r[kind]}
        for a, b in bands:
            t.add_row(f"{a:g}–{b:g}", *[cells.get((n, a, b), "") for n in results])
        out.print(t)


# ------------------------------------------------------------------------------------------ run / demo


def _parcels_messages(parcels: Any) -> None:
    for message in parcels.report.messages:
        _info(f"parcels: {message}")


@app.command()
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
) -> None:
    """Soil moisture of every parcel for one acquisition (--vv and --theta, optionally --date) or a series (--s1); results in
    <out>/plotsm.duckdb and <out>/parquet/moisture. Acquisitions already stored with the same inputs and settings
    are skipped, so an interrupted run resumes where it stopped."""
    import os

    from plotsm.errors import UsageError
    from plotsm.inversion import MaskSettings
    from plotsm.parcels import read_parcels
    from plotsm.pipeline import RunSettings
    from plotsm.raster import parse_nodata
    from plotsm.series import SeriesJob, run_series

    for name, value, allowed in (("--apriori", apriori, ("dry", "wet", "none", "auto")),
                                 ("--rule", rule, ("center", "coverage")), ("--pair", pair, ("month", "nearest")),
                                 ("--vv-unit", vv_unit or "linear", ("linear", "db")),
                                 ("--theta-unit", theta_unit or "degree", ("degree", "radian")),
                                 ("--parcels-update", parcels_update or "add", ("add", "replace")),
                                 ("--weather", weather or "open-meteo", ("open-meteo",))):
        if value not in allowed:
            raise UsageError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
    if ndvi is None:
        raise UsageError("--ndvi is required: an NDVI raster, or with --s1 a folder of monthly composites.")
    if s1 is not None:
        if vv is not None or theta is not None or date is not None:
            raise UsageError("--s1 reads σ⁰, θ and dates from a catalogue; do not combine it with --vv, --theta or --date.")
        from plotsm.catalog import pair_acquisitions, scan_ndvi, scan_s1, vv_unit_of

        scenes = scan_s1(s1)
        unit = vv_unit or vv_unit_of(scenes)
        acqs = pair_acquisitions(scenes, scan_ndvi(ndvi), slope, pair, vv_unit=unit,  # type: ignore[arg-type]
                                 max_gap_days=max_gap_days)
    else:
        missing = [n for n, v in (("--vv", vv), ("--theta", theta)) if v is None]
        if missing:
            raise UsageError(f"one acquisition needs {', '.join(missing)} (or give a catalogue with --s1 DIR).")
        from plotsm.catalog import single_acquisition

        assert vv is not None and theta is not None
        acq, unit = single_acquisition(vv, theta, ndvi, slope, date=date, platform=platform,
                                       orbit_direction=orbit_direction, relative_orbit=relative_orbit,
                                       vv_unit=vv_unit)  # type: ignore[arg-type]
        acqs = [acq]
    if apriori != "auto" and (weather_csv is not None or weather is not None):
        raise UsageError("--weather-csv / --weather are used with --apriori auto only.")
    settings = RunSettings(
        apriori="none" if apriori == "auto" else apriori, rule=rule, vv_unit=unit, buffer_m=buffer_m,  # type: ignore[arg-type]
        masks=MaskSettings(ndvi_max=ndvi_max, min_valid_pixels=min_pixels, slope_max_deg=slope_max),
        models_dir=str(models) if models else None, theta_unit=theta_unit,  # type: ignore[arg-type]
        ndvi_scale=ndvi_scale, ndvi_offset=ndvi_offset, ndvi_nodata=parse_nodata(ndvi_nodata, "--ndvi-nodata"),
    )
    p = read_parcels(parcels, id_field=id_field, parcels_crs=parcels_crs, layer=layer)
    _parcels_messages(p)
    from plotsm.atomic import check_destination

    check_destination(out_dir)  # created by the store once the inputs have passed their checks
    if apriori == "auto":
        jobs = _auto_apriori(p, acqs, settings, out_dir, weather_csv, weather, weather_url,
                             (wet_rain_mm, wet_window_days, dry_days, rain_day_mm))
    else:
        jobs = [SeriesJob(a, settings, apriori_reason=f"set by --apriori {apriori}") for a in acqs]
    # each worker's zonal engine already reads with two threads; on a full tile a worker holds ~1.8 GB
    # (bench/series.py), so one worker per two CPUs keeps both the cores and the memory busy, not oversubscribed
    n_workers = workers if workers is not None else max(1, min((os.cpu_count() or 1) // 2, len(jobs)))
    committed: list[str] = []
    with _progress() as bar:
        task = bar.add_task("run", total=None)

        def cb(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        def event(kind: str, acquisition_id: str, detail: str) -> None:
            if kind == "committed":
                committed.append(acquisition_id)
            if kind == "failed":
                err.print(f"[red]✗[/] {acquisition_id} failed: {escape(detail)}", highlight=False)
            elif not state.quiet:
                mark = {"committed": "[green]✓[/]", "skipped": "[dim]-[/]"}[kind]
                out.print(f"{mark} {acquisition_id} {kind}: {escape(detail)}", highlight=False)

        try:
            report = run_series(p, jobs, out_dir, workers=n_workers, scheduler=scheduler, force=force,
                                parquet=not no_parquet, parcels_update=parcels_update,  # type: ignore[arg-type]
                                progress=cb, event=event, command=" ".join(sys.argv))
        except KeyboardInterrupt:
            raise _interrupted(out_dir, committed, len(jobs)) from None
    if not state.quiet:
        _print_series_summary(report)
        out.print(f"results in {out_dir / 'plotsm.duckdb'}; try: plotsm sql latest --out {out_dir}")
    if report.failed:
        from plotsm.errors import InputError

        reasons = "; ".join(f"{a}: {r}" for a, r in report.failed[:3]) + (" …" if len(report.failed) > 3 else "")
        raise InputError(f"{len(report.failed)} of {len(jobs)} acquisition(s) failed — {reasons}. The others are "
                         f"stored; fix the inputs and run the same command again (stored acquisitions are skipped).")


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


def _auto_apriori(parcels: Any, acqs: list[Any], settings: Any, out_dir: Path, weather_csv: Path | None,
                  service: str | None, url: str, rule_values: tuple[float, int, int, float]) -> list[Any]:
    """Jobs with the a-priori state of each acquisition decided by the weather rule."""
    from dataclasses import replace

    from plotsm.errors import UsageError
    from plotsm.series import SeriesJob
    from plotsm.weather import AprioriRule, decide_apriori, fetch_open_meteo, read_weather_csv, weather_period

    rule = AprioriRule(wet_rain_mm=rule_values[0], wet_window_days=rule_values[1], dry_days=rule_values[2],
                       rain_day_mm=rule_values[3])
    if (weather_csv is None) == (service is None):
        raise UsageError("--apriori auto needs the weather: --weather-csv FILE, or --weather open-meteo to download "
                         "it (one of the two).")
    if weather_csv is not None:
        frame = read_weather_csv(weather_csv)
    else:
        # the centre of the parcels' extent (a union of 150,000 parcels would cost more than it is worth here)
        x0, y0, x1, y1 = parcels.gdf.to_crs("EPSG:4326").total_bounds
        lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
        start, end = weather_period([a.datetime_utc for a in acqs], rule)
        _info(f"weather: Open-Meteo archive, daily precipitation at {lat:.4f} N, {lon:.4f} E, {start} – {end}")
        frame = fetch_open_meteo(lat, lon, start, end, base_url=url, cache_dir=out_dir / "cache" / "weather")
    jobs = []
    for a in acqs:
        decision = decide_apriori(frame, a.datetime_utc, rule)
        jobs.append(SeriesJob(a, replace(settings, apriori=decision.state, apriori_rule=rule.to_dict()),
                              apriori_reason=decision.reason))
    return jobs


def _print_series_summary(report: Any) -> None:
    from rich.table import Table

    table = Table(title=f"plotsm run: {report.seconds:.1f} s", show_header=True)
    table.add_column("acquisitions")
    table.add_column("count", justify="right")
    table.add_column("detail")
    counts = ", ".join(f"{k} {v}" for k, v in report.status_counts.items()) or "-"
    table.add_row("processed", str(len(report.processed)), f"parcel statuses: {counts}")
    table.add_row("skipped", str(len(report.skipped)), "already stored with the same inputs and settings"
                  if report.skipped else "-")
    table.add_row("failed", str(len(report.failed)), "-" if not report.failed else "")
    for acq_id, reason in report.failed:
        table.add_row("", "", f"{acq_id}: {escape(reason)}")
    out.print(table)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder for the demo region and results.")] = Path("demo-output"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic region.")] = 2017,
) -> None:
    """Generate a realistic synthetic region (≥ 2,000 parcels, 4 dates), run the pipeline, report accuracy."""
    from plotsm.demo import run_demo

    with _progress() as bar:
        task = bar.add_task("demo", total=None)

        def cb(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        summary = run_demo(out_dir, seed=seed, progress=cb)
    _print_demo(summary, out_dir)


_DEMO_COLUMNS = {"ok": "ok", "no_data": "no data", "too_few_pixels": "<min px", "ndvi_above_max": "NDVI>max",
                 "slope_above_max": "slope>max", "outside_domain": "domain"}


def _plotsm_command() -> str:
    """How the user can call plotsm from here (the venv's script when it is not on PATH)."""
    import shutil

    return "plotsm" if shutil.which("plotsm") else str(Path(sys.executable).parent / "plotsm")


def _print_demo(s: Any, out_dir: Path) -> None:
    from rich import box

    table = Table(title=f"plotsm demo: {s.n_parcels} parcels × {len(s.acquisitions)} acquisitions, parcels by status",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("date")
    table.add_column("network")
    for label in _DEMO_COLUMNS.values():
        table.add_column(label, justify="right")
    table.add_column("RMSE", justify="right")
    table.add_column("bias", justify="right")
    for a in s.acquisitions:
        day = a["acquisition_id"][:8]
        table.add_row(f"{day[:4]}-{day[4:6]}-{day[6:]}", f"{a['apriori']}→{a['network']}",
                      *[str(a["counts"].get(k, 0)) for k in _DEMO_COLUMNS], f"{a['rmse']:.2f}", f"{a['bias']:+.2f}")
    Console(width=max(out.width, 96)).print(table)
    out.print(
        f"parcels read {s.n_read}, geometries repaired {s.n_repaired}. Against the known truth, on the "
        f"{s.n_ok} estimates with status ok: RMSE {s.rmse:.2f} vol.%, bias {s.bias:+.2f} vol.%. "
        f"Total time {s.seconds:.1f} s."
    )
    out.print(f"outputs: {out_dir / 'plotsm.duckdb'} (DuckDB), {s.export_path} (GeoParquet); inputs in {out_dir / 'scene'}")
    cmd = _plotsm_command()
    out.print("try:")
    out.print(f"  {cmd} sql summary --out {out_dir}")
    out.print(f"  {cmd} sql history --out {out_dir} --param parcel_id={s.example_parcel}")


# --------------------------------------------------------------------------------------------- sql / export


def _format_table(table: Any, fmt: str) -> None:
    """Print a query result on stdout: ``csv``, ``json`` (a list of objects) or ``table`` (aligned columns).

    Each is written as pre-formatted text: rich's JSON highlighting and a rich Table took milliseconds a row
    (13-16 s for 15,549 rows, CSV 1.8 s); ``bench/sql_format.py`` compares the three.
    """
    if fmt == "json":
        # the text rich's print_json wrote (indent 2, non-ASCII kept, dates and other objects as str), unhighlighted
        sys.stdout.write(json.dumps(table.to_pylist(), default=str, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        import io

        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        sys.stdout.write(buf.getvalue().decode())
    else:
        # Plain aligned columns as wide as the content (cells over TABLE_CELL_MAX characters are abbreviated;
        # --format csv/json give them whole), so results are readable in a terminal and in a log alike. The
        # layout is the rich Table (box.SIMPLE_HEAD) this replaces, header bold on a terminal; widths are counted
        # in terminal cells so wide characters stay aligned, and control characters (newline, tab) are shown
        # escaped so that a row stays one line.
        from rich.cells import cell_len
        from rich.text import Text

        escapes = {c: repr(chr(c))[1:-1] for c in (*range(32), 127)}

        def cell(v: Any) -> str:
            text = "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
            if not text.isprintable():
                text = text.translate(escapes)
            return text if len(text) <= TABLE_CELL_MAX else text[: TABLE_CELL_MAX - 1] + "…"

        def width(text: str) -> int:
            return len(text) if text.isascii() else cell_len(text)

        def pad(texts: list[str]) -> list[str]:
            w = max(map(width, texts))
            return [t + " " * (w - width(t)) for t in texts]

        columns = [pad([cell(name), *map(cell, column.to_pylist())])
                   for name, column in zip(table.column_names, table.columns)]
        if not columns:
            sys.stdout.write("\n")  # what the rich Table printed for a result without columns
        else:
            header, *rows = ["  " + "   ".join(cells) + "  " for cells in zip(*columns)]
            blank = " " * width(header)
            sys.stdout.write(blank + "\n")
            out.print(Text(header, style="table.header"), soft_wrap=True)
            rule = " " + "─" * (width(header) - 2) + " "
            sys.stdout.write("\n".join([rule, *rows, blank]) + "\n")
        out.print(f"{table.num_rows} row(s)", style="dim")


TABLE_CELL_MAX = 40


@app.command("sql")
def sql_command(
    name: Annotated[Optional[str], typer.Argument(help="Named query (a file of sql/); omit with --query or --list.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="Query parameter key=value (repeatable).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="Ad-hoc SQL instead of a named query.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    list_: Annotated[bool, typer.Option("--list", help="List the named queries and their parameters.")] = False,
) -> None:
    """Query the moisture store with a named query (sql/NAME.sql, $parameters) or ad-hoc SQL."""
    from plotsm.errors import UsageError
    from plotsm.store import Store, list_queries

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format {fmt!r}: expected table, csv or json")
    if list_:
        t = Table()
        for col in ("name", "parameters", "description"):
            t.add_column(col)
        for q in list_queries():
            t.add_row(q.name, ", ".join("$" + p for p in q.parameters), q.description)
        out.print(t)
        return
    if (name is None) == (query is None):
        raise UsageError("give a query NAME or --query \"SELECT …\" (not both); `plotsm sql --list` shows the names")
    params: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: expected key=value")
        params[key] = value
    with Store(out_dir, read_only=True) as store:
        table = store.query(name, params) if name is not None else store.sql(query or "", params or None)
    _format_table(table, fmt)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
    fmt: Annotated[str, typer.Option("--format", help="geoparquet or gpkg.")] = "geoparquet",
    date: Annotated[Optional[str], typer.Option("--date", help="Only acquisitions of this UTC date (YYYY-MM-DD).")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Target file (default: <out>/moisture.parquet or .gpkg).")] = None,
    layout: Annotated[str, typer.Option("--layout", help="long: a row per parcel and acquisition; wide: a row per parcel, a mv_<acquisition> column per date.")] = "long",
) -> None:
    """Moisture of the whole series (or one date) joined to the parcel geometries, in the parcels' CRS, for a GIS."""
    from plotsm.errors import UsageError
    from plotsm.export import export_moisture

    if fmt not in ("geoparquet", "gpkg"):
        raise UsageError(f"--format {fmt!r}: expected geoparquet or gpkg")
    if layout not in ("long", "wide"):
        raise UsageError(f"--layout {layout!r}: expected long or wide")
    target = to if to is not None else out_dir / ("moisture.parquet" if fmt == "geoparquet" else "moisture.gpkg")
    from plotsm.atomic import writable_file

    writable_file(target, "--to")
    path = export_moisture(out_dir, target, format=fmt, date=date, layout=layout)  # type: ignore[arg-type]
    out.print(f"wrote {path}")


@app.command()
def delete(
    acquisitions: Annotated[list[str], typer.Argument(help="Acquisition ids to delete (plotsm sql summary lists them), e.g. 20240406T174912_S1A.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of a run.")] = Path("demo-output"),
) -> None:
    """Delete stored acquisitions: their rows (acquisitions, observations, moisture) in one transaction, then their
    Parquet files. An unknown id deletes nothing."""
    from plotsm.series import delete_acquisitions

    deleted = delete_acquisitions(out_dir, acquisitions, command=" ".join(sys.argv))
    for acq_id, n_rows in deleted.items():
        out.print(f"deleted {acq_id} ({n_rows} parcel rows and its Parquet file)")


# ------------------------------------------------------------------------------------------- sources

s2_app = typer.Typer(help="Sentinel-2 L2A → NDVI rasters.", no_args_is_help=True)
dem_app = typer.Typer(help="DEM → slope raster.", no_args_is_help=True)
app.add_typer(s2_app, name="s2")
app.add_typer(dem_app, name="dem")


@s2_app.command("ndvi")
def s2_ndvi(
    product: Annotated[Path, typer.Argument(help="Sentinel-2 product, folder or .zip: ESA L2A .SAFE, L2A COG assets with their STAC item, AWS L2A tile folder, Theia L2A or L3A.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder; the NDVI is written there as NDVI_<tile>_<YYYYMMDD>.tif.")],
    uint8: Annotated[bool, typer.Option("--uint8", help="Encode as uint8: round((NDVI+1)·100), 255 = no data.")] = False,
    overviews: Annotated[bool, typer.Option("--overviews", help="Also build internal overviews, for viewing in a GIS (a full tile then takes about 3× as long). Zonal statistics do not need them.")] = False,
) -> None:
    """NDVI of a whole Sentinel-2 product; clouds, shadows, snow, water and no data masked (SCL, CLM/MG2 or FLG).

    Written as a tiled GeoTIFF, ZSTD-compressed (readable by GDAL >= 2.3), without overviews unless --overviews.
    """
    from plotsm.atomic import check_destination
    from plotsm.sources.s2_product import resolve_s2_product, write_product_ndvi

    check_destination(out_dir)
    resolved = resolve_s2_product(product)
    _info(f"{resolved.kind} ({resolved.layout}) tile {resolved.tile}, {resolved.date:%Y-%m-%d}")
    path = write_product_ndvi(resolved, out_dir, encoding="uint8" if uint8 else "float32", overviews=overviews)
    out.print(f"wrote {path}")


@s2_app.command("composite")
def s2_composite(
    ndvi: Annotated[list[Path], typer.Argument(help="NDVI rasters on one grid; dates from YYYYMMDD in the names.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the monthly medians, one ndvi_YYYY-MM.tif per month.")],
) -> None:
    """Monthly median NDVI composites of single-date NDVI rasters (dates read from the file names).

    Every input is checked (readable, one grid, NDVI in a known encoding) before anything is written, and the
    months are moved into place together: a bad input leaves no composite behind."""
    import re

    from plotsm.atomic import check_destination
    from plotsm.errors import InputError
    from plotsm.sources.composite import write_monthly_composites

    check_destination(out_dir)
    dates = []
    for p in ndvi:
        m = re.search(r"(20\d{2})(\d{2})(\d{2})", p.name)
        if not m:
            raise InputError(f"{p}: no date YYYYMMDD in the file name. Rename it, e.g. NDVI_20240406.tif.")
        dates.append(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
    written = write_monthly_composites(list(ndvi), dates, out_dir)
    for month, path in written.items():
        out.print(f"{month}: {path}")


@dem_app.command("slope")
def dem_slope(
    dem: Annotated[Path, typer.Argument(help="DEM GeoTIFF (e.g. SRTM), geographic or projected CRS.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output slope GeoTIFF, degrees.")],
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Raster whose grid the slope is resampled onto (bilinear).")] = None,
    dem_nodata: Annotated[Optional[str], typer.Option("--dem-nodata", metavar="VALUE|none", help="DEM height that means no data (e.g. 0 for SRTM voids filled with 0), in addition to the file's nodata tag; none: all values are real heights (no check). Default: a DEM without nodata tag is checked for suspicious values and warned about.")] = None,
) -> None:
    """Slope in degrees (Horn's method), correct in geographic and projected CRS."""
    from plotsm.sources.dem import as_dem_nodata, slope_deg

    nodata = as_dem_nodata(dem_nodata)
    from plotsm.atomic import writable_dir

    writable_dir(out_path.parent, "--out")
    path = slope_deg(dem, out_path, target_grid=grid, dem_nodata=nodata)
    out.print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------- sentinel-1

s1_app = typer.Typer(help="Sentinel-1 GRD → σ⁰ VV and incidence-angle rasters.", no_args_is_help=True)
app.add_typer(s1_app, name="s1")


@s1_app.command("calibrate")
def s1_calibrate(
    product: Annotated[Path, typer.Argument(help="GRD product: .SAFE folder or .zip (IW, with VV).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (created if missing) for <stem>_sigma0.tif and <stem>_theta.tif.")],
    dem: Annotated[Optional[Path], typer.Option("--dem", help="DEM GeoTIFF for terrain geocoding (e.g. SRTM). Without it: GCP geocoding, no terrain correction.")] = None,
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Raster whose grid to use (e.g. an S2 band or NDVI).")] = None,
    crs: Annotated[Optional[str], typer.Option("--crs", help="Output CRS, e.g. EPSG:32631 (default: UTM zone of the area).")] = None,
    res: Annotated[float, typer.Option("--res", help="Output pixel size, metres (with --crs or the default UTM grid).")] = 10.0,
    parcels: Annotated[Optional[Path], typer.Option("--parcels", help="Parcels whose extent (+ --margin) and UTM zone set the grid.")] = None,
    margin_m: Annotated[float, typer.Option("--margin", help="Margin around --parcels, metres.")] = 200.0,
    geoid_offset: Annotated[Optional[float], typer.Option("--geoid-offset", help="Geoid undulation (m) added to DEM heights (SRTM is EGM96); default: from PROJ if it has the grid, else 0 with a warning.")] = None,
    dem_nodata: Annotated[Optional[str], typer.Option("--dem-nodata", metavar="VALUE|none", help="DEM height that means no data (e.g. 0 for SRTM voids filled with 0): those map pixels get no σ⁰. none: all values are real heights (no check). Default: a DEM without nodata tag is checked and warned about.")] = None,
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Skip thermal-noise removal.")] = False,
) -> None:
    """Calibrate (σ⁰ LUT), remove thermal noise and geocode a GRD product; outputs feed `plotsm run`."""
    from plotsm.atomic import check_destination
    from plotsm.errors import UsageError
    from plotsm.sources.dem import as_dem_nodata
    from plotsm.sources.s1.grd import calibrate_grd

    if grid is not None and (crs is not None or parcels is not None):
        raise UsageError("--grid sets the whole output grid; do not combine it with --crs or --parcels.")
    if dem_nodata is not None and dem is None:
        raise UsageError("--dem-nodata applies to the heights of --dem; pass --dem too, or drop --dem-nodata.")
    nodata = as_dem_nodata(dem_nodata)
    check_destination(out_dir)
    bounds = None
    if parcels is not None:
        from plotsm.parcels import read_parcels

        p = read_parcels(parcels)
        wgs = p.gdf.to_crs(p.gdf.estimate_utm_crs()).buffer(margin_m).to_crs("EPSG:4326")
        bounds = tuple(float(v) for v in wgs.total_bounds)
        if crs is None:
            crs = str(p.gdf.estimate_utm_crs())

    def announce(target: Any) -> None:
        px = target.width * target.height
        bound = ("set by --grid" if grid is not None else "the parcels' extent + --margin" if parcels is not None
                 else f"the product{' ∩ the DEM' if dem is not None else ''} (pass --parcels or --grid to compute "
                      "only the area you need)")
        _info(f"output grid {target.width:,} × {target.height:,} px ({px / 1e6:.1f} Mpx), {bound}")

    with _progress() as bar:
        task = bar.add_task("s1 calibrate", total=None)
        result = calibrate_grd(product, out_dir, dem=dem, grid=grid, crs=crs, res=res, bounds_lonlat=bounds,  # type: ignore[arg-type]
                               geoid_offset_m=geoid_offset, denoise=not no_denoise, dem_nodata=nodata,
                               announce=announce,
                               progress=lambda done, total: bar.update(task, completed=done, total=total,
                                                                       description="s1 calibrate blocks"))
    out.print(f"{result.geocoding} geocoding, {result.grid.width}×{result.grid.height} px, {result.n_valid} valid, "
              f"{result.n_clipped} clipped to 0 by noise removal")
    out.print(f"wrote {result.sigma0}")
    out.print(f"wrote {result.theta}")


# ------------------------------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, map plotsm errors to their exit codes.

    Usage errors are reported by typer itself (exit 2); a :class:`PlotsmError` becomes one line on stderr and
    its exit code; an OSError on a destination (permission, space) is a storage error (exit 6) naming the path;
    Ctrl-C and SIGTERM stop the command with exit 130 and no traceback; anything else is a bug (exit 1, with the
    traceback). Warnings are printed as one ``warning:`` line each (no Python source line).
    """
    import signal
    import warnings

    from plotsm.zonal import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread allocates: see plotsm.zonal.MALLOC_ARENAS
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="plotsm", standalone_mode=True)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM handler) into exit 130, silently
            _fail(130, "interrupted. Files being written were removed: nothing half-written is left.")
        raise
    except PlotsmError as exc:
        _fail(exc.exit_code, str(exc))
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRNOS:
            raise
        from plotsm.atomic import storage_error

        _fail(6, str(storage_error(exc.filename or "output", exc)))
    finally:
        warnings.showwarning = shown


#: errno values of an OSError that mean "cannot write the destination" (exit 6, not a bug)
_STORAGE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}


def _fail(code: int, message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM behaves as Ctrl-C: the command stops where it is, cleans up and says what is kept."""
    raise KeyboardInterrupt


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """One line per warning on stderr, without the Python source line of the default format."""
    err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
