"""Helpers shared by the tests and the benchmarks: they import these, and nothing here imports a test or a
benchmark, so the two never import each other in a circle."""
