"""Score text with an exported ONNX classifier: `Scorer(model_dir)(texts)` answers like the pipeline."""

from runtime.model.scorer import Scorer, Scores

__all__ = ["Scorer", "Scores"]
