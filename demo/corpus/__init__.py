"""Sentiment corpus for the demo model: hand-written sentences widened by a phrase grammar."""
