"""SST-2 dev accuracy of an exported model, through the runtime (the real checkpoint scores 91.1%).

Usage: python -m benchmarks.accuracy [--model models/demo ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from tests.support.corpus import SST2_DEV, sst2_dev
from benchmarks.report import write_report
from tests.support.corpus import sst2_accuracy



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="+", default=[Path("models/demo")])
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if sst2_dev() is None:
        print(f"error: SST-2 dev set not found at {SST2_DEV}; this benchmark needs ../shared/data", file=sys.stderr)
        return 2
    results = {}
    for model_dir in args.model:
        results[str(model_dir)] = round(sst2_accuracy(model_dir), 4)
        print(f"{model_dir}: SST-2 dev accuracy {results[str(model_dir)]:.2%}")
    if args.out:
        write_report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
