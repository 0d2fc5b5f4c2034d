"""Engines that run a typed job: the local engine and the Ray engine, with progress reporting."""
