"""Build ``sentiment.tsv`` from the written sentence files and the phrase grammar.

Run ``python -m demo.corpus.build`` from the repository root. The output is a
deterministic function of the input files and ``SEED``; see README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections import Counter
from pathlib import Path

from demo.corpus.grammar import NEGATIVE, POSITIVE, generate, sst_style

CORPUS_DIR = Path(__file__).resolve().parent
WRITTEN_DIR = CORPUS_DIR / "written"
DEFAULT_OUT = CORPUS_DIR / "sentiment.tsv"
SEED = 20240611
GRAMMAR_PER_LABEL = 700
TRAIN, HELDOUT = "train", "heldout"
HELDOUT_ONE_IN = 5
FILE_LABELS = {"_positive.txt": POSITIVE, "_negative.txt": NEGATIVE}

Row = tuple[str, str, str]  # text, label, split


def read_sentences(path: Path) -> list[str]:
    """Read one sentence per line, skipping blanks and '#' comments."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def written_sentences(directory: Path = WRITTEN_DIR) -> list[tuple[str, str]]:
    """Every written (sentence, label), files in name order; a file's suffix gives its label."""
    found = []
    for path in sorted(directory.glob("*.txt")):
        label = next((lab for suffix, lab in FILE_LABELS.items() if path.name.endswith(suffix)), None)
        if label is None:
            raise ValueError(f"{path.name}: a written file ends in _positive.txt or _negative.txt")
        found.extend((sentence, label) for sentence in read_sentences(path))
    return found


def split_of(sentence: str) -> str:
    """One written sentence in five is held out, chosen by a hash of its words.

    Why: a hash keeps the split stable when files grow, and its lower-cased words (not its
    punctuation) decide, so a near copy that differs only in casing lands in the same split.
    """
    key = " ".join(sst_style(sentence).split()).encode("utf-8")
    return HELDOUT if int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % HELDOUT_ONE_IN == 0 else TRAIN


def build_rows(grammar_per_label: int = GRAMMAR_PER_LABEL, seed: int = SEED) -> list[Row]:
    """Shuffled, de-duplicated (text, label, split) rows.

    Why: a training sentence is kept as written and in treebank style (lower-cased, clitics
    split off), the surface form of movie-review treebanks; a held-out one only as written,
    so each held-out row is one sentence the model never saw in any form. The grammar adds
    ``grammar_per_label`` training rows per label.
    """
    labels_of: dict[str, str] = {}  # treebank form -> label: catches a sentence written twice or both ways
    rows: list[Row] = []
    for sentence, label in written_sentences():
        key = sst_style(sentence)
        if key in labels_of:
            if labels_of[key] != label:
                raise ValueError(f"written as both labels: {sentence!r}")
            continue
        labels_of[key] = label
        split = split_of(sentence)
        forms = (sentence,) if split == HELDOUT else dict.fromkeys((sentence, key))
        rows.extend((text, label, split) for text in forms)
    taken = {text for text, _, _ in rows} | set(labels_of)
    for label in (NEGATIVE, POSITIVE):
        extra = generate(label, grammar_per_label, seed, exclude=taken)
        taken.update(extra)
        rows.extend((text, label, TRAIN) for text in extra)
    random.Random(seed).shuffle(rows)
    return rows


def write_tsv(rows: list[Row], out: Path) -> None:
    """Write a ``text<TAB>label<TAB>split`` file with a header row."""
    lines = ["text\tlabel\tsplit"] + ["\t".join(row) for row in rows]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    """Command-line entry point: rebuild the TSV and print its composition."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--grammar-per-label", type=int, default=GRAMMAR_PER_LABEL)
    args = parser.parse_args()
    rows = build_rows(args.grammar_per_label)
    write_tsv(rows, args.out)
    counts = Counter((split, label) for _, label, split in rows)
    print(f"wrote {len(rows)} rows to {args.out}: " + ", ".join(f"{s} {l} {n}" for (s, l), n in sorted(counts.items())))


if __name__ == "__main__":
    main()
