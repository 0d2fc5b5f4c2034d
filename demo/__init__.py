"""Demo model for the ONNX batch scorer: a small sentiment corpus and a trainer for it."""
