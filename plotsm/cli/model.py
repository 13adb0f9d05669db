"""``plotsm train`` and ``plotsm model list|evaluate``: the inversion networks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from plotsm.cli.console import out
from plotsm.cli.progress import progress

model_app = typer.Typer(help="Inspect and evaluate the inversion networks.", no_args_is_help=True)


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
    from plotsm.model.publish import network_names, publish_all

    names = network_names(network)
    with progress() as bar:
        tasks = {n: bar.add_task(f"train {n}", total=None) for n in names}

        def cb(name: str, i: int, total: int, valid: float) -> None:
            bar.update(tasks[name], completed=i, description=f"train {name} (valid RMSE {valid:.3f})")

        nets = publish_all(out_dir, names=names, n_train=samples, seed=seed, progress=cb,
                           **({} if evaluate else {"evaluation": None}))
        for n in names:
            bar.update(tasks[n], total=bar.tasks[tasks[n]].completed)
    table = Table(title=f"networks written to {nets[0].onnx_path.parent}")
    for col in ("network", "mv range", "validation RMSE", "bias", "R²", "iterations"):
        table.add_column(col)
    for p in nets:
        v = p.metadata["plotsm.validation"]
        lo, hi = p.metadata["plotsm.mv_range_pct"]
        table.add_row(p.name, f"{lo:g}–{hi:g}", f"{v['rmse_pct']:.3f}", f"{v['bias_pct']:+.3f}", f"{v['r2']:.3f}",
                      str(p.metadata["plotsm.training"]["iterations"]))
    out.print(table)


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
    temporal: Annotated[bool, typer.Option("--temporal", help="Evaluate the joint (temporal) inversion on synthetic parcel series instead.")] = False,
    windows: Annotated[str, typer.Option("--windows", help="With --temporal: window lengths (dates), comma-separated.")] = "5,10,20",
    parcels: Annotated[int, typer.Option("--parcels", min=1, help="With --temporal: synthetic parcels per network and moisture model.")] = 2000,
    mv_model: Annotated[Optional[list[str]], typer.Option("--mv-model", help="With --temporal: moisture model(s) of the series: bucket, uniform (default both).")] = None,
    prior: Annotated[Optional[list[str]], typer.Option("--prior", help="With --temporal: mv prior(s) of the joint inversion: synth, learned (default both).")] = None,
    all_orbits: Annotated[bool, typer.Option("--all-orbits", help="With --temporal: windows over both orbits instead of per orbit.")] = False,
    dynamics: Annotated[bool, typer.Option("--dynamics/--no-dynamics", help="With --temporal: also the moisture-dynamics mode (slower).")] = True,
) -> None:
    """Accuracy of each network on fresh noisy samples: RMSE, bias, R², by NDVI and mv band, and the bound.

    With --temporal: single-date networks, the single-date posterior (the bound) and the joint inversion of
    synthetic parcel series, by window, NDVI band and interval coverage (docs/temporal.md)."""
    from plotsm.errors import ModelError

    if temporal:
        _evaluate_temporal(as_json, network, windows, parcels, seed, mv_model, prior, all_orbits, dynamics)
        return
    from plotsm.model.evaluate import TARGET_RATIO, EvalSettings, evaluate
    from plotsm.model.infer import available_networks, load_network
    from plotsm.model.synth import SynthSettings

    names = list(network) if network else list(available_networks(models))
    settings = EvalSettings(n_test=samples, n_reference=reference, k=k, seed=seed)
    results: dict[str, Any] = {}
    with progress() as bar:
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


def _evaluate_temporal(as_json: bool, network: Optional[list[str]], windows: str, parcels: int, seed: int,
                       mv_model: Optional[list[str]], prior: Optional[list[str]], all_orbits: bool,
                       dynamics: bool) -> None:
    from plotsm.errors import UsageError
    from plotsm.model.evaluate_temporal import TemporalEvalSettings, evaluate_temporal

    try:
        wins = tuple(int(w) for w in windows.split(",") if w.strip())
    except ValueError:
        raise UsageError(f"--windows {windows}: expected whole numbers separated by commas, e.g. 5,10,20") from None
    if not wins or min(wins) < 0:
        raise UsageError(f"--windows {windows}: expected window lengths ≥ 0 (0: the whole series)")
    settings = TemporalEvalSettings(parcels=parcels, windows=wins, seed=seed, by_orbit=not all_orbits, dynamics=dynamics,
                                    networks=tuple(network) if network else ("dry", "all", "wet"),
                                    mv_models=tuple(mv_model) if mv_model else ("bucket", "uniform"),
                                    priors=tuple(prior) if prior else ("synth", "learned"))
    with progress() as bar:
        task = bar.add_task("evaluate --temporal", total=None)
        result = evaluate_temporal(settings, progress=lambda msg: bar.update(task, description=msg))
    if as_json:
        out.print_json(json.dumps(result))
        return
    from rich import box

    rows: list[dict[str, Any]] = result["rows"]  # type: ignore[assignment]
    key = ("net", "mv", "method", "prior", "win")
    main = Table(title=f"Joint inversion of synthetic series, {parcels} parcels × 60 dates (vol.%; gain: RMSE below "
                       "the single-date bound; coverage of the 68 / 95 % credible intervals, and of mean ± 1 / 1.96 std)", box=box.SIMPLE_HEAD, pad_edge=False)
    bands = Table(title="RMSE by true-NDVI band (vol.%)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in (*key, "RMSE", "bias", "cov68", "cov95", "±1sd", "±1.96sd", "gain%"):
        main.add_column(col, justify="right", no_wrap=True)
    for col in (*key, "NDVI<.25", "NDVI .25–.5", "NDVI>.5"):
        bands.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        ids = (r["network"], r["mv_model"], r["method"], r["prior"], str(r["window"]))
        cov = [f"{r[k]:.3f}" if k in r else "" for k in ("coverage68", "coverage95", "std_coverage68", "std_coverage95")]
        gain = f"{r['gain_pct']:+.1f}" if "gain_pct" in r else ""
        main.add_row(*ids, f"{r['rmse']:.3f}", f"{r['bias']:+.2f}", *cov, gain)
        bands.add_row(*ids, *[f"{b['rmse']:.2f}" for b in r["by_ndvi"]])
    from rich.console import Console

    wide = Console(width=max(out.width, 120))  # 12 columns: never cut to ellipses on an 80-column pipe
    wide.print(main)
    wide.print(bands)
