"""Text to model inputs: tokenization, long-text windows and length-sorted batches."""
