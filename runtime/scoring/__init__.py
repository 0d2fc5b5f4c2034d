"""Scoring: texts in, label ids and probabilities out (the model, the tokenizer and the batches together)."""
