"""`python -m runtime.verify DIR`: a self-check to run on a new host before trusting it with a nightly job.

It checks the manifest's identity and every file of it (graph and tokenizer), then tokenizes and scores the
probe texts stored at export time and compares the token ids (by digest: another `tokenizers` version may
read the same tokenizer.json differently) and the answers with the ones recorded there, and says which
precisions this host runs natively.
"""

from __future__ import annotations

import sys
import numpy as np

from runtime.cli import OneLineParser, exit_code
from runtime.errors import ModelError, ScorerError
from runtime.model.cache import local_model_dir
from runtime.model.model_dir import read_manifest
from runtime.model.precision import host_capabilities
from runtime.scoring.scorer import Scorer

VERIFY_ATOL = 1e-4


def verify(model_dir: str, atol: float = VERIFY_ATOL) -> float:
    """Return the max probability difference on the probes; raise ModelError on any difference in the model's
    files or the probes' token ids, or a probability difference over `atol`."""
    scorer = Scorer(model_dir)
    manifest = scorer.manifest
    if not manifest.probes or len(manifest.probes) != len(manifest.probe_probabilities):
        raise ModelError(f"{model_dir} records no probe outputs; re-export it with `python -m export`")
    if scorer.token_digest(manifest.probes) != manifest.probe_token_digest:
        raise ModelError(
            f"{model_dir}'s tokenizer encodes its probe texts into other token ids on this host than at export; "
            "check the tokenizers version against the manifest's"
        )
    expected = np.asarray(manifest.probe_probabilities, dtype=np.float32)
    difference = float(np.abs(scorer.score(manifest.probes).probabilities - expected).max())
    if difference > atol:
        raise ModelError(
            f"{model_dir} answers its probe texts differently on this host: max |diff| {difference:.2e} "
            f"> tolerance {atol:.0e}; check the onnxruntime version against the manifest's"
        )
    return difference


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m runtime.verify", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", metavar="DIR", help="model dir: a path or a URI (s3://, gs://, hdfs://, file://)")
    args = parser.parse_args(argv)
    try:
        difference = verify(args.model_dir)
    except ScorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    print(f"ok: {args.model_dir} matches its manifest; probe outputs within {difference:.1e} of export time")
    print(host_capabilities(read_manifest(local_model_dir(args.model_dir), verify_sha256=False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
