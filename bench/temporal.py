"""Joint (temporal) inversion, issue 17: (i) accuracy on synthetic series, (ii) speed on a tile-year.

(i) The table of ``plotsm model evaluate --temporal``: RMSE of the single-date network, the single-date grid
posterior (the bound) and the joint inversion for windows of 5, 10 and 20 dates, by network range and NDVI band,
with the 68/95 % interval coverage. Target: with 20-date windows, joint RMSE ≥ 6 % below the bound (dry, all).
(ii) ``invert_series`` on 150,000 parcels × 60 dates (target ≤ 60 s on 2 cores, ≤ 3 GB): wall time, and the
peak resident memory of the process during the call (sampled /proc) above the inputs.

Run: ``python bench/temporal.py [--parcels 2000] [--speed-parcels 150000] [--skip-accuracy] [--skip-speed]``.
The speed inputs are 5,000 simulated series tiled to the size asked (the work per date does not depend on
its values).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from dataclasses import replace

import numpy as np

from plotsm.inversion import RUN_TEMPORAL
from plotsm.model.evaluate_temporal import TemporalEvalSettings, evaluate_temporal, score
from plotsm.model.series_synth import simulate_series
from plotsm.model.synth import SynthSettings
from plotsm.model.temporal import TemporalSettings, invert_series, posterior_single

from _timing import tree_rss_bytes


def accuracy(parcels: int, as_json: bool) -> None:
    res = evaluate_temporal(TemporalEvalSettings(parcels=parcels))
    if as_json:
        print(json.dumps(res, indent=1))
        return
    print(f"accuracy on {parcels} synthetic parcels × 60 dates per network range and moisture model (vol.%)")
    head = f"{'net':4} {'mv model':8} {'method':8} {'prior':8} {'win':>3} {'RMSE':>6} {'bias':>6} " \
           f"{'N<.25':>6} {'N.25-.5':>7} {'N>.5':>6} {'cov68':>6} {'cov95':>6} {'±1sd':>6} {'±1.96':>6} {'gain%':>6}"
    print(head)
    for r in res["rows"]:  # type: ignore[union-attr]
        b = [x["rmse"] for x in r["by_ndvi"]]
        cov = " ".join(f"{r[k]:6.3f}" if k in r else f"{'':6}"
                       for k in ("coverage68", "coverage95", "std_coverage68", "std_coverage95"))
        gain = f"{r['gain_pct']:6.1f}" if "gain_pct" in r else ""
        print(f"{r['network']:4} {r['mv_model']:8} {r['method']:8} {r['prior']:8} {r['window']:3d} {r['rmse']:6.3f} "
              f"{r['bias']:+6.2f} {b[0]:6.2f} {b[1]:7.2f} {b[2]:6.2f} {cov} {gain}")


def extras(parcels: int) -> None:
    """Beyond the table: both orbits in one chain, the whole year as one window, NDVI smoothed over ±2 dates."""
    print("extras: joint variants, gain vs the single-date bound (RMSE vol.%, cov68/cov95)")
    variants = {"w20 per orbit": TemporalSettings(window=20), "w20 both orbits": TemporalSettings(window=20, by_orbit=False),
                "year, both orbits": TemporalSettings(window=0, by_orbit=False),
                "w20 + NDVI ±2 dates": TemporalSettings(window=20, ndvi_smooth=2),
                "w20 no NDVI-noise quadrature": TemporalSettings(window=20, ndvi_nodes=1)}
    for name in ("dry", "all"):
        synth = SynthSettings.for_network(name)
        for mv_model in ("uniform", "bucket"):
            db = simulate_series(parcels, synth, seed=1292, mv_model=mv_model)
            single = posterior_single(db.theta_deg.ravel(), db.ndvi.ravel(), db.vv_db.ravel(), synth=synth)
            bound = float(np.sqrt(np.mean((single.mv_pct - db.mv_pct.ravel()) ** 2)))
            print(f"  {name} {mv_model}: single-date bound {bound:.3f}")
            for label, ts in variants.items():
                for prior in ("synth", "learned"):
                    post = invert_series(db.theta_deg, db.ndvi, db.vv_db, synth=synth, orbit=db.orbit,
                                         settings=replace(ts, mv_prior=prior))
                    sc = score(post.mv_pct, post.mv_std_pct, db, post.intervals)
                    print(f"    {label:30} prior {prior:7} RMSE {sc['rmse']:.3f} bias {sc['bias']:+.2f} "
                          f"gain {100 * (1 - float(sc['rmse']) / bound):+5.1f} % "  # type: ignore[arg-type]
                          f"cov {sc['coverage68']:.3f}/{sc['coverage95']:.3f}")


def speed(parcels: int, dates: int, settings: TemporalSettings) -> None:
    synth = SynthSettings.for_network("all")
    base = simulate_series(5000, synth, seed=3, n_dates=dates)
    reps = -(-parcels // 5000)
    theta, ndvi, vv = (np.tile(a, (reps, 1))[:parcels] for a in (base.theta_deg, base.ndvi, base.vv_db))
    invert_series(theta[:100], ndvi[:100], vv[:100], synth=synth, orbit=base.orbit, settings=settings)  # tables
    before = tree_rss_bytes(os.getpid())
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], tree_rss_bytes(os.getpid()))

    th = threading.Thread(target=sample)
    th.start()
    t0 = time.perf_counter()
    post = invert_series(theta, ndvi, vv, synth=synth, orbit=base.orbit, settings=settings)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    print(f"invert_series {parcels:,} parcels × {dates} dates ({settings}): {wall:.1f} s wall, "
          f"{parcels * dates / wall / 1e6:.2f} M dates/s; RSS before {before / 2**30:.2f} GiB, "
          f"peak during {peak[0] / 2**30:.2f} GiB (+{(peak[0] - before) / 2**30:.2f} GiB); "
          f"max RSS of the process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; "
          f"NaN outputs {int(np.isnan(post.mv_pct).sum())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parcels", type=int, default=2000)
    ap.add_argument("--speed-parcels", type=int, default=150_000)
    ap.add_argument("--dates", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ndvi-nodes", type=int, default=TemporalSettings().ndvi_nodes)
    ap.add_argument("--dynamics", action="store_true",
                    help="time the moisture-dynamics mode (both orbits, kernel fitted to the data)")
    ap.add_argument("--run", action="store_true",
                    help="time a run's configuration, plotsm.inversion.RUN_TEMPORAL (dynamics and the learned prior)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the accuracy results as JSON")
    args = ap.parse_args()
    if not args.skip_speed:
        ts = TemporalSettings(threads=args.threads, ndvi_nodes=args.ndvi_nodes)
        if args.dynamics:
            ts = replace(ts, by_orbit=False, mv_fit=True)
        if args.run:
            ts = replace(RUN_TEMPORAL, threads=args.threads, ndvi_nodes=args.ndvi_nodes)
        speed(args.speed_parcels, args.dates, ts)
    if not args.skip_accuracy:
        accuracy(args.parcels, args.json)
        if not args.json:
            extras(args.parcels)


if __name__ == "__main__":
    main()
