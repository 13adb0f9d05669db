"""``plotsm demo``: a synthetic region, the pipeline run on it, and its accuracy against the known truth."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from plotsm.cli.console import out
from plotsm.cli.progress import progress


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder for the demo region and results.")] = Path("demo-output"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic region.")] = 2017,
) -> None:
    """Generate a realistic synthetic region (≥ 2,000 parcels, 4 dates), run the pipeline, report accuracy."""
    from plotsm.demo import run_demo

    with progress() as bar:
        task = bar.add_task("demo", total=None)

        def cb(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        summary = run_demo(out_dir, seed=seed, progress=cb)
    _print_demo(summary, out_dir)


_DEMO_COLUMNS = {"ok": "ok", "no_data": "no data", "too_few_pixels": "<min px", "ndvi_above_max": "NDVI>max",
                 "slope_above_max": "slope>max", "outside_domain": "domain"}


def _plotsm_command() -> str:
    """How the user can call plotsm from here (the venv's script when it is not on PATH)."""
    return "plotsm" if shutil.which("plotsm") else str(Path(sys.executable).parent / "plotsm")


def _print_demo(s: Any, out_dir: Path) -> None:
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
        f"{s.n_ok} estimates with status ok ({_methods(s.methods)}): RMSE {s.rmse:.2f} vol.%, "
        f"bias {s.bias:+.2f} vol.%. "
        f"Total time {s.seconds:.1f} s."
    )
    out.print(f"outputs: {out_dir / 'plotsm.duckdb'} (DuckDB), {s.export_path} (GeoParquet); inputs in {out_dir / 'scene'}")
    if s.report_path is not None:
        out.print(f"report: open file://{Path(s.report_path).resolve()} in a browser (offline, self-contained)")
    if s.map_path is not None:
        out.print(f"quick-look map of the last date: {s.map_path}")
    cmd = _plotsm_command()
    out.print("try:")
    out.print(f"  {cmd} sql summary --out {out_dir}")
    out.print(f"  {cmd} sql history --out {out_dir} --param parcel_id={s.example_parcel}")


def _methods(methods: dict[str, int]) -> str:
    """'method temporal' or 'methods single 12, temporal 8040' (the inversion that made the estimates)."""
    if len(methods) == 1:
        return f"method {next(iter(methods))}"
    return "methods " + ", ".join(f"{k} {v}" for k, v in sorted(methods.items()))
