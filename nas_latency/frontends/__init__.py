"""Frontends: torch modules, ONNX models and layer tables to the network IR."""
