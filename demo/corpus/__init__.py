"""Sentiment corpus for the demo model: film-review sentences written for the project, and how they become the TSV."""
