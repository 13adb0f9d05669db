"""Run the inversion networks with onnxruntime.

Networks are found by name in a models folder (default: the shipped ``models/``) or given as a path; sessions
are cached per file (path + modification time), so a series of acquisitions loads each network once. Inference
works on whole arrays in batches, keeps row order, and never loops per row in Python. Rows with a NaN or
infinite input give NaN (onnxruntime would map ±inf through tanh to a finite, meaningless value).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import ArrayLike, NDArray

from plotsm.errors import ModelError
from plotsm.model.synth import INPUT_NAMES
from plotsm.resources import models_dir

#: Rows per onnxruntime call: large enough to amortise the call, small enough to keep buffers in cache-friendly
#: sizes (a few MB).
DEFAULT_BATCH_ROWS = 262_144

_EXPECTED = f"[N, 3] with columns in the order {', '.join(INPUT_NAMES)} (degrees, 0-1, dB)"


def available_networks(folder: Path | None = None) -> dict[str, Path]:
    """Networks in ``folder`` (default: the shipped models), by name (file stem)."""
    folder = Path(folder) if folder is not None else models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))}


@dataclass(frozen=True)
class Network:
    """A loaded network: its onnxruntime session and metadata."""

    name: str
    path: Path
    session: ort.InferenceSession
    metadata: dict[str, Any]

    @property
    def mv_range_pct(self) -> tuple[float, float]:
        lo, hi = self.metadata.get("plotsm.mv_range_pct", [float("nan"), float("nan")])
        return float(lo), float(hi)

    @property
    def version(self) -> str:
        return str(self.metadata.get("plotsm.version", "unknown"))

    def predict(self, x: ArrayLike, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> NDArray[np.float64]:
        """mv_pct for inputs ``x`` of shape [N, 3] (theta_deg, ndvi, vv_db); returns shape [N], row order kept."""
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.shape[1] != len(INPUT_NAMES):
            raise ModelError(f"network {self.name}: inputs have shape {list(arr.shape)}; expected {_EXPECTED}")
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        arr = np.ascontiguousarray(arr)
        out = np.empty(arr.shape[0], dtype=np.float64)
        input_name = self.session.get_inputs()[0].name
        for start in range(0, arr.shape[0], batch_rows):
            block = arr[start : start + batch_rows]
            (res,) = self.session.run(None, {input_name: block})
            out[start : start + block.shape[0]] = res[:, 0]
        bad = ~np.isfinite(arr).all(axis=1)
        out[bad] = np.nan
        return out

    def predict_table(self, table: Any, *, columns: tuple[str, ...] = INPUT_NAMES) -> NDArray[np.float64]:
        """mv_pct for a pandas DataFrame or pyarrow Table holding the input columns (any extra columns ignored)."""
        missing = [c for c in columns if c not in _column_names(table)]
        if missing:
            raise ModelError(
                f"network {self.name}: input table lacks columns {missing}; expected {_EXPECTED}"
            )
        x = np.column_stack([_column(table, c) for c in columns])
        return self.predict(x)


def _column_names(table: Any) -> list[str]:
    return list(getattr(table, "column_names", None) or getattr(table, "columns", []))


def _column(table: Any, name: str) -> NDArray[np.float64]:
    col = table[name]
    if hasattr(col, "to_numpy") and not hasattr(col, "dtype"):  # pyarrow ChunkedArray
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(col, dtype=np.float64)  # pandas Series / numpy (nullable → NaN)


def _resolve(name_or_path: str | Path, folder: Path | None) -> tuple[str, Path]:
    candidate = Path(name_or_path)
    if candidate.suffix == ".onnx" or candidate.exists():
        if not candidate.is_file():
            raise ModelError(f"network file {candidate} not found. Available: {_listing(candidate.parent)}")
        return candidate.stem, candidate
    nets = available_networks(folder)
    if str(name_or_path) not in nets:
        where = Path(folder) if folder is not None else models_dir()
        raise ModelError(
            f"network {name_or_path!r} not found in {where}. Available: {_listing(where)}. "
            "Run `plotsm train` to regenerate the shipped networks."
        )
    return str(name_or_path), nets[str(name_or_path)]


def _listing(folder: Path) -> str:
    names = sorted(available_networks(folder)) if folder.is_dir() else []
    return ", ".join(names) if names else "none"


@lru_cache(maxsize=32)
def _load(path: str, mtime_ns: int, name: str) -> Network:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelError(f"network file {path} cannot be loaded by onnxruntime: {exc}") from exc
    raw = session.get_modelmeta().custom_metadata_map
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    return Network(name=name, path=Path(path), session=session, metadata=metadata)


def load_network(name_or_path: str | Path, *, folder: Path | None = None) -> Network:
    """Load (or reuse) a network by name (``dry``, ``wet``, ``all``) or by ``.onnx`` path."""
    name, path = _resolve(name_or_path, folder)
    resolved = path.resolve()
    return _load(str(resolved), resolved.stat().st_mtime_ns, name)


def predict(network: str | Path | Network, x: ArrayLike, **kwargs: Any) -> NDArray[np.float64]:
    """Convenience: load ``network`` if needed and run it on ``x`` [N, 3]."""
    net = network if isinstance(network, Network) else load_network(network)
    return net.predict(x, **kwargs)
