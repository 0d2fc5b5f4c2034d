"""Checkpoint -> validated ONNX model dir for the runtime (`python -m export`)."""

DEFAULT_OPSET = 17
