"""Train, validate, export and document the shipped networks (``plotsm train``).

For each network: draw its synthetic database, train with Levenberg–Marquardt, measure it on fresh noisy
samples against the posterior-mean bound, export ONNX with metadata, and write a model card (``<name>.md``)
that states the same in words and numbers. Files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from plotsm import __version__
from plotsm.model import evaluate as ev
from plotsm.model.onnx_export import to_onnx, write_onnx
from plotsm.model.synth import INPUT_NAMES, NETWORK_MV_RANGES, SynthSettings, simulate
from plotsm.model.train import TrainResult, TrainSettings, train_network
from plotsm.errors import UsageError, option
from plotsm.progress import Epochs, NetworkEpochs

INPUT_UNITS = {"theta_deg": "incidence angle, degrees", "ndvi": "NDVI, 0-1", "vv_db": "sigma0 VV, dB"}


@dataclass
class PublishedNetwork:
    name: str
    onnx_path: Path
    card_path: Path
    metadata: dict[str, Any]


def _validation_metrics(result: TrainResult, synth: SynthSettings, seed: int, n: int) -> dict[str, float]:
    """RMSE, bias and R² on an independent noisy validation database (not the one used for early stopping)."""
    db = simulate(n, synth, seed=seed)
    pred = result.mlp.predict(db.x)
    err = pred - db.mv_pct
    return {
        "n": n,
        "rmse_pct": float(np.sqrt(np.mean(err**2))),
        "bias_pct": float(np.mean(err)),
        "r2": float(1 - np.sum(err**2) / np.sum((db.mv_pct - db.mv_pct.mean()) ** 2)),
    }


def publish_network(
    name: str,
    out_dir: Path,
    train: TrainSettings,
    *,
    evaluation: ev.EvalSettings | None = ev.EvalSettings(),
    progress: Epochs | None = None,
) -> PublishedNetwork:
    """Train network ``name`` (dry, wet or all) and write ``<out_dir>/<name>.onnx`` and ``<name>.md``."""
    synth = SynthSettings.for_network(name)
    result = train_network(synth, train, progress=progress)
    validation = _validation_metrics(result, synth, seed=train.seed + 1_000_003, n=max(train.n_valid, 10_000))
    evaluation_result = ev.evaluate(result.mlp.predict, synth, evaluation) if evaluation else None
    metadata: dict[str, Any] = {
        "plotsm.network": name,
        "plotsm.mv_range_pct": list(NETWORK_MV_RANGES[name]),
        "plotsm.inputs": [{"name": n, "unit": INPUT_UNITS[n]} for n in INPUT_NAMES],
        "plotsm.output": {"name": "mv_pct", "unit": "volumetric soil moisture, vol.%"},
        "plotsm.architecture": f"3 -> {train.hidden} linear -> {train.hidden} tanh -> 1 linear",
        "plotsm.synth_settings": synth.to_dict(),
        "plotsm.train_settings": train.to_dict(),
        "plotsm.seed": train.seed,
        "plotsm.version": __version__,
        "plotsm.validation": validation,
        "plotsm.training": {
            "iterations": result.iterations,
            "seconds": round(result.seconds, 1),
            "train_rmse_pct": result.train_rmse,
            "early_stopping_rmse_pct": result.valid_rmse,
        },
    }
    if evaluation_result is not None:
        metadata["plotsm.evaluation"] = {
            k: evaluation_result[k] for k in ("rmse", "bias", "r2", "bound_rmse", "ratio_to_bound", "settings")
        }
    onnx_path = write_onnx(to_onnx(result.mlp, metadata), Path(out_dir) / f"{name}.onnx")
    card_path = _write_text(Path(out_dir) / f"{name}.md", model_card(metadata, evaluation_result))
    return PublishedNetwork(name, onnx_path, card_path, metadata)


def network_names(names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The networks ``names`` asks for, checked (UsageError naming the unknown ones); None: all of them."""
    if not names:
        return tuple(NETWORK_MV_RANGES)
    unknown = [n for n in names if n not in NETWORK_MV_RANGES]
    if unknown:
        raise UsageError(f"{option('network')} {', '.join(unknown)}: unknown; choose among "
                         f"{', '.join(NETWORK_MV_RANGES)}")
    return tuple(names)


def publish_all(
    out_dir: Path | None = None,
    *,
    names: Sequence[str] | None = None,
    n_train: int = TrainSettings.n_train,
    seed: int = TrainSettings.seed,
    evaluation: ev.EvalSettings | None = ev.EvalSettings(),
    progress: NetworkEpochs | None = None,
) -> list[PublishedNetwork]:
    """Train and export every network in ``names`` (default: all, :func:`network_names`) into ``out_dir``
    (default: the shipped ``models/``, :func:`plotsm.resources.models_dir`)."""
    from plotsm.resources import models_dir

    out_dir = Path(out_dir) if out_dir is not None else models_dir()
    out = []
    for name in network_names(names):
        cb = (lambda i, m, v, _n=name: progress(_n, i, m, v)) if progress else None
        out.append(
            publish_network(name, out_dir, replace(TrainSettings(), n_train=n_train, seed=seed),
                            evaluation=evaluation, progress=cb)
        )
    return out


def _write_text(path: Path, text: str) -> Path:
    from plotsm.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)
    return path


def model_card(meta: dict[str, Any], evaluation: dict[str, Any] | None) -> str:
    """The model card: what the network is for, how it was made, how good it is."""
    name = meta["plotsm.network"]
    lo, hi = meta["plotsm.mv_range_pct"]
    s = meta["plotsm.synth_settings"]
    t = meta["plotsm.train_settings"]
    v = meta["plotsm.validation"]
    tr = meta["plotsm.training"]
    lines = [
        f"# Network `{name}` — soil moisture {lo:g}–{hi:g} vol.%",
        "",
        f"File: `{name}.onnx` (ONNX opset 17, float32). Produced by plotsm {meta['plotsm.version']} "
        f"with `plotsm train --samples {t['n_train']} --seed {t['seed']}`.",
        "",
        "## Use",
        "",
        "Input `x`, float32 `[N, 3]`, raw values in this order: "
        + "; ".join(f"`{i['name']}` ({i['unit']})" for i in meta["plotsm.inputs"])
        + ". Output `mv_pct`, float32 `[N, 1]`, volumetric soil moisture in vol.%. Input standardisation and "
        "output scaling are inside the graph. σ⁰ must be the parcel mean taken in linear units, then "
        "converted to dB. plotsm clips the output to the network's range and flags rows outside the training "
        "domain; a bare onnxruntime call does neither.",
        "",
        f"Chosen by plotsm for `--apriori {'none' if name == 'all' else name}`"
        + (" (no a-priori moisture state)." if name == "all" else "."),
        "",
        "## Training data (synthetic, science.md §5)",
        "",
        f"- mv uniform {s['mv_pct'][0]:g}–{s['mv_pct'][1]:g} vol.%; θ uniform {s['theta_deg'][0]:g}–"
        f"{s['theta_deg'][1]:g}°; Hrms uniform {s['hrms_cm'][0]:g}–{s['hrms_cm'][1]:g} cm; NDVI uniform "
        f"{s['ndvi'][0]:g}–{s['ndvi'][1]:g}; soil sand {s['sand_pct']:g} %, clay {s['clay_pct']:g} %.",
        "- Forward model: Hallikainen (1985) permittivity at 5.405 GHz → IEM (Fung 1992, Gaussian ACF, "
        "Baghdadi calibrated correlation length) → Water Cloud Model (A = 0.0950, B = 0.5513, V = NDVI).",
        f"- Noise: σ⁰ + N(0, {s['vv_noise_db']:g} dB); NDVI · (1 + N(0, {s['ndvi_noise_rel']:g})).",
        f"- {t['n_train']:,} training and {t['n_valid']:,} early-stopping samples, seed {t['seed']}.",
        "",
        "## Network and training",
        "",
        f"{meta['plotsm.architecture']} (the seed paper's architecture), Levenberg–Marquardt on the normal "
        f"equations, early stopping after {t['max_fail']} validation failures: {tr['iterations']} iterations, "
        f"{tr['seconds']:g} s.",
        "",
        "## Accuracy on synthetic data",
        "",
        f"Independent noisy validation set ({v['n']:,} samples): RMSE {v['rmse_pct']:.3f} vol.%, "
        f"bias {v['bias_pct']:+.3f}, R² {v['r2']:.3f}.",
    ]
    if evaluation is not None:
        e = evaluation
        st = e["settings"]
        lines += [
            "",
            f"`plotsm model evaluate` ({st['n_test']:,} fresh noisy samples, seed {st['seed']}): RMSE "
            f"{e['rmse']:.3f} vol.%, bias {e['bias']:+.3f}, R² {e['r2']:.3f}. Posterior-mean bound "
            f"({st['k']}-NN over {st['n_reference']:,} noisy samples): {e['bound_rmse']:.3f} vol.%; "
            f"ratio {e['ratio_to_bound']:.3f} (target ≤ {ev.TARGET_RATIO}).",
            "",
            "| NDVI band | n | RMSE | bias | bound |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {b['from']:g}–{b['to']:g} | {b['n']:,} | {b['rmse']:.2f} | {b['bias']:+.2f} | {b['bound_rmse']:.2f} |"
                for b in e["by_ndvi"]
            ],
            "",
            "| mv band (vol.%) | n | RMSE | bias | bound |",
            "|---|---:|---:|---:|---:|",
            *[
                f"| {b['from']:g}–{b['to']:g} | {b['n']:,} | {b['rmse']:.2f} | {b['bias']:+.2f} | {b['bound_rmse']:.2f} |"
                for b in e["by_mv"]
            ],
        ]
    lines += [
        "",
        "## Limits",
        "",
        "Trained on a physical model with one soil texture and the noise above: accuracy on real fields is "
        "bounded by how well the model and noise represent them (the operational S²MP product reports about "
        "5 vol.% RMSE against in-situ probes). Estimates regress towards the middle of the range where the "
        "signal is weak (dense vegetation, high roughness): read the bias by band above. No estimate is "
        "meaningful above NDVI 0.75.",
        "",
        "Full metadata (JSON) in the ONNX `metadata_props`: " + ", ".join(f"`{k}`" for k in sorted(meta)) + ".",
        "",
    ]
    return "\n".join(lines)
