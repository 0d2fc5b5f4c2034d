"""Score text with an exported ONNX classifier: `Scorer(model_dir)(texts)` answers like the pipeline."""

from runtime.scoring.scorer import Scorer, Scores

__all__ = ["Scorer", "Scores"]
