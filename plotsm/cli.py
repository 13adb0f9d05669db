"""plotsm command-line interface (typer).

The only module that prints, reads the environment or chooses an exit code: library code raises
:class:`plotsm.errors.PlotsmError` subclasses and this module turns them into a one-line message on stderr and
the error's exit code (0 ok, 1 bug, 2 usage, 3 configuration, 4 input data, 5 model, 6 storage).
Progress goes to stderr (rich); results to stdout.
"""

from __future__ import annotations

import json
import sys
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


class _State:
    quiet = False


state = _State()


def _progress() -> Progress:
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


def _print_report(report: Any) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in report.status_counts.items())
    _info(
        f"acquisition {report.acquisition_id}: {report.n_parcels} parcels, network {report.network}: {counts} "
        f"({report.seconds['total']:.1f} s)"
    )
    if report.n_parcels and report.status_counts.get("no_data", 0) == report.n_parcels:
        err.print(
            f"[yellow]warning:[/] acquisition {report.acquisition_id}: no parcel has a valid σ⁰ pixel. Check that "
            "the parcels overlap the rasters (their CRS, or --parcels-crs) and that the σ⁰ raster is not all no-data."
        )


def _parcels_messages(parcels: Any) -> None:
    for message in parcels.report.messages:
        _info(f"parcels: {message}")


@app.command()
def run(
    parcels: Annotated[Path, typer.Option("--parcels", help="Parcels: shapefile, GeoPackage, GeoJSON or GeoParquet.")],
    vv: Annotated[Path, typer.Option("--vv", help="σ⁰ VV raster (linear power unless --vv-unit db).")],
    theta: Annotated[Path, typer.Option("--theta", help="Incidence angle raster, degrees.")],
    ndvi: Annotated[Path, typer.Option("--ndvi", help="NDVI raster (0–1) paired with the acquisition.")],
    date: Annotated[str, typer.Option("--date", help="Acquisition date/time, ISO (UTC if no offset).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (holds plotsm.duckdb and caches).")],
    slope: Annotated[Optional[Path], typer.Option("--slope", help="Slope raster, degrees (optional).")] = None,
    apriori: Annotated[str, typer.Option("--apriori", help="A-priori soil state: dry, wet or none (→ full-range network).")] = "none",
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="Parcel id field (default: first unique id-like field).")] = None,
    parcels_crs: Annotated[Optional[str], typer.Option("--parcels-crs", help="CRS of parcels that lack one, e.g. EPSG:2154.")] = None,
    layer: Annotated[Optional[str], typer.Option("--parcels-layer", help="Layer of a multi-layer parcels file.")] = None,
    rule: Annotated[str, typer.Option("--rule", help="Pixel rule: center (pixel centres) or coverage (exact fractions).")] = "center",
    buffer_m: Annotated[float, typer.Option("--buffer", help="Inner buffer of the parcels in metres (e.g. -10 drops mixed edge pixels).")] = 0.0,
    vv_unit: Annotated[str, typer.Option("--vv-unit", help="Unit of the --vv raster: linear or db (averaged in linear units either way).")] = "linear",
    platform: Annotated[Optional[str], typer.Option("--platform", help="Platform, e.g. S1A.")] = None,
    orbit_direction: Annotated[Optional[str], typer.Option("--orbit-direction", help="ascending or descending.")] = None,
    relative_orbit: Annotated[Optional[int], typer.Option("--relative-orbit", help="Relative orbit number.")] = None,
    ndvi_max: Annotated[float, typer.Option("--ndvi-max", help="No estimate above this NDVI.")] = 0.75,
    min_pixels: Annotated[int, typer.Option("--min-pixels", help="No estimate below this many valid σ⁰ pixels.")] = 20,
    slope_max: Annotated[float, typer.Option("--slope-max", help="No estimate above this slope, degrees.")] = 10.0,
    models: Annotated[Optional[Path], typer.Option("--models-dir", help="Folder of .onnx networks (default: shipped).")] = None,
) -> None:
    """Soil moisture of every parcel for one Sentinel-1 acquisition; results in <out>/plotsm.duckdb."""
    from plotsm.errors import UsageError
    from plotsm.inversion import MaskSettings
    from plotsm.parcels import read_parcels
    from plotsm.pipeline import Acquisition, RunSettings, parse_datetime, run_series

    for name, value, allowed in (("--apriori", apriori, ("dry", "wet", "none")), ("--rule", rule, ("center", "coverage")),
                                 ("--vv-unit", vv_unit, ("linear", "db"))):
        if value not in allowed:
            raise UsageError(f"{name} {value!r}: expected one of {', '.join(allowed)}")
    settings = RunSettings(
        apriori=apriori, rule=rule, vv_unit=vv_unit, buffer_m=buffer_m,  # type: ignore[arg-type]
        masks=MaskSettings(ndvi_max=ndvi_max, min_valid_pixels=min_pixels, slope_max_deg=slope_max),
        models_dir=str(models) if models else None,
    )
    acq = Acquisition(datetime_utc=parse_datetime(date), vv=vv, theta=theta, ndvi=ndvi, slope=slope,
                      platform=platform, orbit_direction=orbit_direction, relative_orbit=relative_orbit)
    p = read_parcels(parcels, id_field=id_field, parcels_crs=parcels_crs, layer=layer)
    _parcels_messages(p)
    with _progress() as bar:
        task = bar.add_task("run", total=None)

        def cb(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        reports = run_series(p, [(acq, settings)], out_dir, progress=cb, command=" ".join(sys.argv))
    for report in reports:
        _print_report(report)
    out.print(f"results in {out_dir / 'plotsm.duckdb'}; try: plotsm sql latest --out {out_dir}")


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
    import pyarrow.csv as pacsv

    if fmt == "json":
        out.print_json(json.dumps(table.to_pylist(), default=str))
    elif fmt == "csv":
        import io

        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        sys.stdout.write(buf.getvalue().decode())
    else:
        # Plain aligned columns as wide as the content (cells over TABLE_CELL_MAX characters are abbreviated;
        # --format csv/json give them whole), so results are readable in a terminal and in a log alike.
        from rich import box

        def cell(v: Any) -> str:
            text = "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
            return text if len(text) <= TABLE_CELL_MAX else text[: TABLE_CELL_MAX - 1] + "…"

        rows = [[cell(v) for v in row.values()] for row in table.to_pylist()]
        t = Table(box=box.SIMPLE_HEAD)
        for name in table.column_names:
            t.add_column(name, no_wrap=True)
        for row in rows:
            t.add_row(*row)
        widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(table.column_names)]
        Console(width=sum(widths) + 3 * len(widths) + 4).print(t)
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
) -> None:
    """Moisture joined to the parcel geometries, in the parcels' CRS, for a GIS."""
    from plotsm.errors import UsageError
    from plotsm.export import export_moisture

    if fmt not in ("geoparquet", "gpkg"):
        raise UsageError(f"--format {fmt!r}: expected geoparquet or gpkg")
    target = to if to is not None else out_dir / ("moisture.parquet" if fmt == "geoparquet" else "moisture.gpkg")
    path = export_moisture(out_dir, target, format=fmt, date=date)  # type: ignore[arg-type]
    out.print(f"wrote {path}")


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
) -> None:
    """NDVI of a whole Sentinel-2 product; clouds, shadows, snow, water and no data masked (SCL, CLM/MG2 or FLG)."""
    from plotsm.sources.s2_product import resolve_s2_product, write_product_ndvi

    resolved = resolve_s2_product(product)
    _info(f"{resolved.kind} ({resolved.layout}) tile {resolved.tile}, {resolved.date:%Y-%m-%d}")
    path = write_product_ndvi(resolved, out_dir, encoding="uint8" if uint8 else "float32")
    out.print(f"wrote {path}")


@s2_app.command("composite")
def s2_composite(
    ndvi: Annotated[list[Path], typer.Argument(help="NDVI rasters on one grid; dates from YYYYMMDD in the names.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for ndvi_YYYYMM.tif monthly medians.")],
) -> None:
    """Monthly median NDVI composites of single-date NDVI rasters (dates read from the file names)."""
    import re

    from plotsm.errors import InputError
    from plotsm.sources.composite import write_monthly_composites

    dates = []
    for p in ndvi:
        m = re.search(r"(20\d{2})(\d{2})(\d{2})", p.name)
        if not m:
            raise InputError(f"{p}: no date YYYYMMDD in the file name. Rename it, e.g. NDVI_20240406.tif.")
        dates.append(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_monthly_composites(list(ndvi), dates, out_dir)
    for month, path in written.items():
        out.print(f"{month}: {path}")


@dem_app.command("slope")
def dem_slope(
    dem: Annotated[Path, typer.Argument(help="DEM GeoTIFF (e.g. SRTM), geographic or projected CRS.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output slope GeoTIFF, degrees.")],
    grid: Annotated[Optional[Path], typer.Option("--grid", help="Raster whose grid the slope is resampled onto (bilinear).")] = None,
) -> None:
    """Slope in degrees (Horn's method), correct in geographic and projected CRS."""
    from plotsm.sources.dem import slope_deg

    path = slope_deg(dem, out_path, target_grid=grid)
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
    no_denoise: Annotated[bool, typer.Option("--no-denoise", help="Skip thermal-noise removal.")] = False,
) -> None:
    """Calibrate (σ⁰ LUT), remove thermal noise and geocode a GRD product; outputs feed `plotsm run`."""
    from plotsm.errors import UsageError
    from plotsm.sources.s1.grd import calibrate_grd

    if grid is not None and (crs is not None or parcels is not None):
        raise UsageError("--grid sets the whole output grid; do not combine it with --crs or --parcels.")
    bounds = None
    if parcels is not None:
        from plotsm.parcels import read_parcels

        p = read_parcels(parcels)
        wgs = p.gdf.to_crs(p.gdf.estimate_utm_crs()).buffer(margin_m).to_crs("EPSG:4326")
        bounds = tuple(float(v) for v in wgs.total_bounds)
        if crs is None:
            crs = str(p.gdf.estimate_utm_crs())
    out_dir.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        task = bar.add_task("s1 calibrate", total=None)
        result = calibrate_grd(product, out_dir, dem=dem, grid=grid, crs=crs, res=res, bounds_lonlat=bounds,  # type: ignore[arg-type]
                               geoid_offset_m=geoid_offset, denoise=not no_denoise,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"{result.geocoding} geocoding, {result.grid.width}×{result.grid.height} px, {result.n_valid} valid, "
              f"{result.n_clipped} clipped to 0 by noise removal")
    out.print(f"wrote {result.sigma0}")
    out.print(f"wrote {result.theta}")


# ------------------------------------------------------------------------------------------------- entry


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, map plotsm errors to their exit codes.

    Usage errors are reported by typer itself (exit 2); a :class:`PlotsmError` becomes one line on stderr and
    its exit code; anything else is a bug (exit 1, with the traceback).
    """
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="plotsm", standalone_mode=True)
    except PlotsmError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
