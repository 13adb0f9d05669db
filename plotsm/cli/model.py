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
) -> None:
    """Accuracy of each network on fresh noisy samples: RMSE, bias, R², by NDVI and mv band, and the bound."""
    from plotsm.errors import ModelError
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
