"""Build ``sentiment.tsv`` from the hand-written sentence files and the phrase grammar.

Run ``python -m demo.corpus.build`` from the repository root. The output is a
deterministic function of the input files and ``SEED``; see README.md.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from demo.corpus.grammar import NEGATIVE, POSITIVE, generate, sst_style

CORPUS_DIR = Path(__file__).resolve().parent
HANDWRITTEN = {
    POSITIVE: CORPUS_DIR / "handwritten_positive.txt",
    NEGATIVE: CORPUS_DIR / "handwritten_negative.txt",
}
DEFAULT_OUT = CORPUS_DIR / "sentiment.tsv"
SEED = 20240611
PER_LABEL = 1500


def read_handwritten(path: Path) -> list[str]:
    """Read one sentence per line, skipping blanks and '#' comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_rows(per_label: int = PER_LABEL, seed: int = SEED) -> list[tuple[str, str]]:
    """Return shuffled, de-duplicated (text, label) rows, `per_label` for each label.

    Why: each hand-written sentence is kept verbatim and also in tokenised
    lower-case form; the grammar tops each label up to the same count so the
    classes are exactly balanced.
    """
    handwritten = {label: read_handwritten(path) for label, path in HANDWRITTEN.items()}
    taken: set[str] = set()
    rows: list[tuple[str, str]] = []
    for label in (NEGATIVE, POSITIVE):
        texts: list[str] = []
        for sentence in handwritten[label]:
            for text in (sentence, sst_style(sentence)):
                if text not in taken:
                    taken.add(text)
                    texts.append(text)
        if len(texts) > per_label:
            raise ValueError(f"{len(texts)} hand-written {label} texts exceed per_label={per_label}")
        extra = generate(label, per_label - len(texts), seed, exclude=taken)
        taken.update(extra)
        rows.extend((text, label) for text in texts + extra)
    random.Random(seed).shuffle(rows)
    return rows


def write_tsv(rows: list[tuple[str, str]], out: Path) -> None:
    """Write a ``text<TAB>label`` file with a header row."""
    lines = ["text\tlabel"] + [f"{text}\t{label}" for text, label in rows]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    """Command-line entry point: rebuild the TSV and print its composition."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-label", type=int, default=PER_LABEL)
    args = parser.parse_args()
    rows = build_rows(args.per_label)
    write_tsv(rows, args.out)
    counts = {label: sum(1 for _, lab in rows if lab == label) for label in (NEGATIVE, POSITIVE)}
    hand = {label: len(read_handwritten(path)) for label, path in HANDWRITTEN.items()}
    print(f"wrote {len(rows)} rows to {args.out}: {counts}; hand-written sentences: {hand}")


if __name__ == "__main__":
    main()
