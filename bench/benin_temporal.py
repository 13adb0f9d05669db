"""Joint vs single-date inversion on a real 39-month series: Itchedjiro inland valley, Benin (issue 17).

Data: ``../shared/data/benin-itchedjiro`` (SOURCES.md): monthly mean Sentinel-1 σ⁰ VV (linear), monthly mean θ
(one value over the area per month), monthly median Sentinel-2 NDVI, 2019-01 … 2022-03, 10 m, and a segmentation
of an NDVI composite. Parcels: the segments with at least ``--min-pixels`` pixels of valid data (the other
segments are one or a few pixels). Per parcel and month: σ⁰ averaged in linear power then dB, θ and NDVI means.

What the data allow, and what not: the dates are **monthly composites** (several acquisitions averaged, orbits
mixed, so ``by_orbit`` has nothing to separate: one chain); there is no soil-moisture probe in the folder, so no
accuracy can be measured, only how the estimates differ: bias (joint − single), spread, the RMS of month-to-month
change and the lag-1 autocorrelation of successive differences (noise that is independent from date to date
gives −0.5), and the posterior standard deviation. No weather either, so the ``all`` network (2–45 vol.%) is the
a-priori choice, as plotsm makes it without weather. A month is about 2.5 Sentinel-1 dates per orbit: the tillage
probability per date is set per month (``--change-prob``, default 0.15 ≈ 1–2 tillages a year).

Run: ``python bench/benin_temporal.py [--min-pixels 20] [--window 12] [--change-prob 0.15]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import rasterize

from plotsm.model.dynamics import fit_kernel
from plotsm.model.infer import load_network
from plotsm.model.posterior_grid import GridSpec
from plotsm.model.synth import SynthSettings
from plotsm.model.temporal import Posterior, TemporalSettings, invert_series, posterior_single

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benin-itchedjiro"


def _stack(folder: str, prefix: str) -> tuple[list[str], np.ndarray, rasterio.Affine, tuple[int, int]]:
    files = sorted((DATA / folder).glob(f"{prefix}_*.tif"))
    months = [f.stem.rsplit("_", 1)[1] for f in files]
    with rasterio.open(files[0]) as r:
        transform, shape = r.transform, r.shape
    arr = np.stack([rasterio.open(f).read(1).astype(np.float64) for f in files])
    return months, arr, transform, shape


def parcel_inputs(min_pixels: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(months, θ, NDVI, σ⁰ dB, pixel counts): arrays (P, T) of the segments with ≥ ``min_pixels`` valid pixels."""
    months, vv, transform, shape = _stack("VV", "VV_monthly_mean")
    m2, theta, _, _ = _stack("Angle", "Angle_monthly_mean")
    m3, ndvi, _, _ = _stack("NDVI", "NDVI_monthly_median")
    if not months == m2 == m3:
        raise SystemExit(f"months differ between VV, Angle and NDVI: {months} {m2} {m3}")
    seg = gpd.read_file(DATA / "segments" / "NDVI_2019_2021_SEGMENTED.shp")
    labels = rasterize(zip(seg.geometry, seg["label"]), out_shape=shape, transform=transform, fill=0,
                       dtype="int32")
    n_lab = int(labels.max()) + 1
    flat = labels.ravel()
    out = []
    for a, is_power in ((theta, False), (ndvi, False), (vv, True)):
        ok = np.isfinite(a) & (a > 0 if is_power else True) & (flat[None, :] > 0).reshape(1, *shape)
        sums = np.stack([np.bincount(flat, weights=np.where(ok[t].ravel(), a[t].ravel(), 0.0), minlength=n_lab)
                         for t in range(a.shape[0])])
        counts = np.stack([np.bincount(flat, weights=ok[t].ravel(), minlength=n_lab) for t in range(a.shape[0])])
        out.append((sums, counts))
    counts = out[2][1]
    keep = np.flatnonzero((counts.min(axis=0) >= min_pixels) & (np.arange(n_lab) > 0))

    def mean(i: int) -> np.ndarray:
        s, c = out[i]
        return np.where(c[:, keep] > 0, s[:, keep] / np.maximum(c[:, keep], 1), np.nan).T

    vv_db = 10.0 * np.log10(mean(2))  # mean of linear power, then dB (science.md §1)
    return months, mean(0), mean(1), vv_db, counts[:, keep].T


def consistency(x: np.ndarray) -> dict[str, float]:
    d = np.diff(x, axis=1)
    a, b = d[:, :-1].ravel(), d[:, 1:].ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return {"mean": float(np.nanmean(x)), "spread_sd": float(np.nanstd(x)),
            "rms_change": float(np.sqrt(np.nanmean(d**2))), "lag1_r_of_changes": float(np.corrcoef(a[ok], b[ok])[0, 1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--min-pixels", type=int, default=20)
    ap.add_argument("--window", type=int, default=12)
    ap.add_argument("--change-prob", type=float, default=0.15)
    ap.add_argument("--network", default="all")
    args = ap.parse_args()
    months, theta, ndvi, vv_db, counts = parcel_inputs(args.min_pixels)
    p, t = vv_db.shape
    net = load_network(args.network)
    synth = SynthSettings.from_dict(net.metadata["plotsm.synth_settings"])
    print(f"Itchedjiro: {p} parcels (segments with ≥ {args.min_pixels} valid pixels, median "
          f"{int(np.median(counts))} px) × {t} months {months[0]}–{months[-1]}; θ {np.nanmin(theta):.1f}–"
          f"{np.nanmax(theta):.1f}°, NDVI {np.nanmin(ndvi):.2f}–{np.nanmax(ndvi):.2f}, σ⁰ {np.nanmin(vv_db):.1f}–"
          f"{np.nanmax(vv_db):.1f} dB; network {args.network} (mv {synth.mv_pct[0]:g}–{synth.mv_pct[1]:g} %)")
    outside = (ndvi > synth.ndvi[1]) | (vv_db < -25) | (vv_db > 0)
    print(f"  dates outside the training domain (NDVI > {synth.ndvi[1]}, σ⁰ outside −25…0 dB): "
          f"{int(np.sum(outside))} of {p * t} (masked, as the product does)")
    theta, ndvi, vv_db = (np.where(outside, np.nan, a) for a in (theta, ndvi, vv_db))
    x = np.column_stack([theta.ravel(), ndvi.ravel(), vv_db.ravel()])
    network = np.clip(net.predict(x), *synth.mv_pct).reshape(p, t)
    single = posterior_single(theta.ravel(), ndvi.ravel(), vv_db.ravel(), synth=synth)
    estimates: dict[str, Posterior | np.ndarray] = {
        "network": network,
        "single posterior": Posterior(single.mv_pct.reshape(p, t), single.mv_std_pct.reshape(p, t))}
    for prior in ("synth", "learned"):
        for window in (args.window, 0):
            ts = TemporalSettings(window=window, by_orbit=False, change_prob=args.change_prob, mv_prior=prior)
            estimates[f"joint w{window or 'all'} {prior}"] = invert_series(theta, ndvi, vv_db, synth=synth, settings=ts)
        ts = TemporalSettings(window=0, by_orbit=False, change_prob=args.change_prob, mv_prior=prior, mv_fit=True)
        estimates[f"joint+dyn wall {prior}"] = invert_series(theta, ndvi, vv_db, synth=synth, settings=ts)
    ts = TemporalSettings(window=0, by_orbit=False, change_prob=args.change_prob)
    kernel = fit_kernel(theta, ndvi, vv_db, synth, spec=GridSpec(hrms_cells=ts.dyn_hrms_cells),
                        windows=[np.arange(t)], change_prob=args.change_prob, step_pct=ts.mv_step_pct,
                        bins=round((synth.mv_pct[1] - synth.mv_pct[0]) / 2), noise_rel=None)
    print(f"  moisture kernel fitted to the observations (synth prior): persistence {kernel[0]}, decay {kernel[1]} "
          "per month")
    base = estimates["single posterior"]
    assert isinstance(base, Posterior)
    print(f"{'estimate':24} {'mean':>6} {'sd':>6} {'RMS Δmonth':>10} {'r(Δ,Δ+1)':>9} {'bias vs single':>14} "
          f"{'RMS diff':>8} {'post. sd':>8}")
    for name, est in estimates.items():
        mv = est.mv_pct if isinstance(est, Posterior) else est
        c = consistency(mv)
        diff = mv - base.mv_pct
        sd = f"{np.nanmean(est.mv_std_pct):8.2f}" if isinstance(est, Posterior) else f"{'':8}"
        print(f"{name:24} {c['mean']:6.2f} {c['spread_sd']:6.2f} {c['rms_change']:10.2f} "
              f"{c['lag1_r_of_changes']:9.2f} {np.nanmean(diff):+14.2f} {np.sqrt(np.nanmean(diff**2)):8.2f} {sd}")
    season = [int(m[4:]) for m in months]
    joint = estimates[f"joint w{args.window} synth"]
    assert isinstance(joint, Posterior)
    print("monthly mean over parcels (single posterior / joint w%d synth), vol.%%:" % args.window)
    print("  " + " ".join(f"{m}:{np.nanmean(base.mv_pct[:, i]):.0f}/{np.nanmean(joint.mv_pct[:, i]):.0f}"
                          for i, m in enumerate(months)))
    wet = np.isin(season, [6, 7, 8, 9, 10])
    print(f"  wet season (Jun–Oct) − dry season mean, single {np.nanmean(base.mv_pct[:, wet]) - np.nanmean(base.mv_pct[:, ~wet]):+.1f}, "
          f"joint {np.nanmean(joint.mv_pct[:, wet]) - np.nanmean(joint.mv_pct[:, ~wet]):+.1f} vol.%")
    print("no probe data in the folder: accuracy against in-situ moisture cannot be measured here.")


if __name__ == "__main__":
    main()
