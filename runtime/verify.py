"""`python -m runtime.verify DIR`: a self-check to run on a new host before trusting it with a nightly job.

It checks the manifest and the ONNX file's sha256, then scores the probe texts stored at export time and
compares the answers with the ones recorded there, and says which precisions this host runs natively.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from runtime.errors import InputError
from runtime.model.model_dir import read_manifest
from runtime.model.precision import host_capabilities
from runtime.model.scorer import Scorer

VERIFY_ATOL = 1e-4


def verify(model_dir: Path, atol: float = VERIFY_ATOL) -> float:
    """Return the max probability difference on the probes; raise InputError when it exceeds `atol`."""
    scorer = Scorer(model_dir)
    manifest = scorer.manifest
    if not manifest.probes or len(manifest.probes) != len(manifest.probe_probabilities):
        raise InputError(f"{model_dir} records no probe outputs; re-export it with `python -m export`")
    expected = np.asarray(manifest.probe_probabilities, dtype=np.float32)
    difference = float(np.abs(scorer.score(manifest.probes).probabilities - expected).max())
    if difference > atol:
        raise InputError(
            f"{model_dir} answers its probe texts differently on this host: max |diff| {difference:.2e} "
            f"> tolerance {atol:.0e}; check the onnxruntime version against the manifest's"
        )
    return difference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.verify", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    try:
        difference = verify(args.model_dir)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {args.model_dir} matches its manifest; probe outputs within {difference:.1e} of export time")
    print(host_capabilities(read_manifest(args.model_dir, verify_sha256=False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
