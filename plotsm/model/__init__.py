"""Inversion networks: synthetic database (:mod:`synth`), training (:mod:`train`), ONNX export
(:mod:`onnx_export`), inference (:mod:`infer`) and evaluation (:mod:`evaluate`)."""
