"""Export a trained :class:`~plotsm.model.mlp.MLP` to ONNX, scaling included, with descriptive metadata.

Graph: ``x`` float32 [N, 3] raw (theta_deg, ndvi, vv_db) → (x − mean)/std → Gemm (linear, H) → Gemm → Tanh →
Gemm (1) → ·y_std + y_mean → ``mv_pct`` float32 [N, 1]. Metadata (``metadata_props``, all strings; JSON where
structured) carries what a user needs to trust and reproduce the network: see :data:`METADATA_KEYS`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from plotsm.model.mlp import MLP
from plotsm.model.synth import INPUT_NAMES, OUTPUT_NAME

INPUT_TENSOR = "x"
OUTPUT_TENSOR = OUTPUT_NAME

#: metadata_props keys written on every exported network.
METADATA_KEYS = (
    "plotsm.network",
    "plotsm.mv_range_pct",
    "plotsm.inputs",
    "plotsm.output",
    "plotsm.synth_settings",
    "plotsm.train_settings",
    "plotsm.seed",
    "plotsm.version",
    "plotsm.validation",
)

#: ONNX opset: Gemm/Tanh/Sub/Div/Mul/Add have been stable for years; 17 is read by every maintained runtime.
OPSET = 17


def to_onnx(mlp: MLP, metadata: dict[str, Any]) -> onnx.ModelProto:
    """Build the ONNX model of ``mlp``; ``metadata`` values are stored as strings (JSON if not a string)."""
    f32 = np.float32

    def init(name: str, arr: Any) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(arr, dtype=f32), name)

    initializers = [
        init("x_mean", mlp.x_mean.reshape(1, -1)),
        init("x_std", mlp.x_std.reshape(1, -1)),
        init("w1", mlp.w1),
        init("b1", mlp.b1),
        init("w2", mlp.w2),
        init("b2", mlp.b2),
        init("w3", mlp.w3),
        init("b3", mlp.b3),
        init("y_std", np.array([[mlp.y_std]])),
        init("y_mean", np.array([[mlp.y_mean]])),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_TENSOR, "x_mean"], ["x_centred"], name="centre_inputs"),
        helper.make_node("Div", ["x_centred", "x_std"], ["x_scaled"], name="scale_inputs"),
        helper.make_node("Gemm", ["x_scaled", "w1", "b1"], ["h1"], transB=1, name="hidden1_linear"),
        helper.make_node("Gemm", ["h1", "w2", "b2"], ["a2"], transB=1, name="hidden2"),
        helper.make_node("Tanh", ["a2"], ["h2"], name="hidden2_tanh"),
        helper.make_node("Gemm", ["h2", "w3", "b3"], ["y_scaled"], transB=1, name="output_linear"),
        helper.make_node("Mul", ["y_scaled", "y_std"], ["y_unscaled"], name="unscale_output"),
        helper.make_node("Add", ["y_unscaled", "y_mean"], [OUTPUT_TENSOR], name="shift_output"),
    ]
    graph = helper.make_graph(
        nodes,
        "plotsm_inversion",
        inputs=[helper.make_tensor_value_info(INPUT_TENSOR, TensorProto.FLOAT, ["N", len(INPUT_NAMES)])],
        outputs=[helper.make_tensor_value_info(OUTPUT_TENSOR, TensorProto.FLOAT, ["N", 1])],
        initializer=initializers,
        doc_string="Inputs: x[:, 0]=theta_deg (degrees), x[:, 1]=ndvi (0-1), x[:, 2]=vv_db (sigma0 VV, dB). "
        "Output: mv_pct (volumetric soil moisture, vol.%).",
    )
    model = helper.make_model(
        graph,
        producer_name="plotsm",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=str(metadata.get("plotsm.network", "")),
    )
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    onnx.checker.check_model(model)
    return model


def write_onnx(model: onnx.ModelProto, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    from plotsm.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))
        os.chmod(tmp, 0o644)
    return path


def mlp_from_onnx(model: onnx.ModelProto) -> MLP:
    """Recover the numpy network from an exported model (for checks and re-export)."""
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    return MLP(
        w1=w["w1"],
        b1=w["b1"],
        w2=w["w2"],
        b2=w["b2"],
        w3=w["w3"],
        b3=w["b3"],
        x_mean=w["x_mean"].ravel(),
        x_std=w["x_std"].ravel(),
        y_mean=float(w["y_mean"].ravel()[0]),
        y_std=float(w["y_std"].ravel()[0]),
    )
