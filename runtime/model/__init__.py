"""The model dir format, its ONNX Runtime session, activations and the Scorer built on them."""
