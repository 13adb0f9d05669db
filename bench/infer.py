"""Inference throughput of the shipped ONNX networks: rows per second for 10⁶ rows.

Target (issue 2): ≥ 5 × 10⁶ rows/s on a 2-core machine. Peers timed in the same run: the same weights as a
float64 numpy forward pass, and a bare onnxruntime ``session.run`` on the whole array (plotsm's batching,
finite-check and dtype handling add to it). Run: ``python bench/infer.py [--rows N] [--repeat R] [--json]``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx

from plotsm.model.infer import available_networks, load_network
from plotsm.model.onnx_export import mlp_from_onnx

from _timing import best_of




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [rng.uniform(20, 45, args.rows), rng.uniform(0, 0.75, args.rows), rng.uniform(-25, -3, args.rows)]
    ).astype(np.float32)
    results = {}
    for name, path in available_networks().items():
        net = load_network(name)
        net.predict(x[:1000])  # warm-up
        mlp = mlp_from_onnx(onnx.load(path))
        inp = net.session.get_inputs()[0].name
        t_plotsm = best_of(lambda: net.predict(x), args.repeat)
        t_bare = best_of(lambda: net.session.run(None, {inp: x}), args.repeat)
        t_numpy = best_of(lambda: mlp.predict(x.astype(np.float64)), max(1, args.repeat // 2))
        results[name] = {
            "rows": args.rows,
            "plotsm_rows_per_s": args.rows / t_plotsm,
            "bare_onnxruntime_rows_per_s": args.rows / t_bare,
            "numpy_float64_rows_per_s": args.rows / t_numpy,
            "ratio_plotsm_vs_numpy": t_numpy / t_plotsm,
            "ratio_plotsm_vs_bare_ort": t_bare / t_plotsm,
            "meets_5e6_target": args.rows / t_plotsm >= 5e6,
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'network':8} {'plotsm rows/s':>14} {'bare ORT':>12} {'numpy f64':>12} {'vs numpy':>9} {'target 5e6':>11}")
    for name, r in results.items():
        print(
            f"{name:8} {r['plotsm_rows_per_s']:14.3e} {r['bare_onnxruntime_rows_per_s']:12.3e} "
            f"{r['numpy_float64_rows_per_s']:12.3e} {r['ratio_plotsm_vs_numpy']:8.1f}x "
            f"{'met' if r['meets_5e6_target'] else 'NOT met':>11}"
        )


if __name__ == "__main__":
    main()
