"""Build ``sentiment.tsv`` from the written sentence files.

Run ``python -m demo.corpus.build`` from the repository root. The output is a
deterministic function of the files in ``written/``; see README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
from collections import Counter
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent
WRITTEN_DIR = CORPUS_DIR / "written"
DEFAULT_OUT = CORPUS_DIR / "sentiment.tsv"
SEED = 20240611
NEGATIVE, POSITIVE = "NEGATIVE", "POSITIVE"
TRAIN, HELDOUT = "train", "heldout"
HELDOUT_ONE_IN = 5
FILE_LABELS = {"_positive.txt": POSITIVE, "_negative.txt": NEGATIVE}

Row = tuple[str, str, str]  # text, label, split

_QUOTED = re.compile(r'"([^"]*)"')
_PUNCT = re.compile(r"([.,!?;:])")


def sst_style(text: str) -> str:
    """Lower-case and tokenise as the Penn Treebank does: clitics and punctuation split off, brackets as
    -lrb- / -rrb-, quotes as `` and '', dashes as --.

    Why: movie-review treebanks, the usual yardstick for sentiment, come in that form, so the model should
    see it in training as well as ordinary text.
    """
    text = text.lower().replace("\u2014", " -- ").replace("\u2013", " -- ").replace("\u2019", "'")
    text = text.replace("can't", "ca n't").replace("won't", "wo n't")
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    text = re.sub(r"(\w)('s|'re|'ve|'ll|'d|'m)\b", r"\1 \2", text)
    text = _QUOTED.sub(r" `` \1 '' ", text)
    text = text.replace("(", " -lrb- ").replace(")", " -rrb- ")
    text = _PUNCT.sub(r" \1 ", text)
    return " ".join(text.split())


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


def _hash(purpose: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{purpose}:{key}".encode()).digest()[:8], "big")


def split_of(key: str) -> str:
    """One sentence in five is held out, chosen by a hash of its treebank form.

    Why: a hash keeps the split stable when files grow, and the treebank form decides, so two copies
    that differ only in casing or punctuation land in the same split.
    """
    return HELDOUT if _hash("split", key) % HELDOUT_ONE_IN == 0 else TRAIN


def build_rows(seed: int = SEED) -> list[Row]:
    """Shuffled (text, label, split) rows, one per distinct written sentence.

    Why: a training sentence appears once, as written or in treebank style (by a hash, half each), so
    the model sees both surface forms at the cost of one; a held-out sentence appears as written.
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
        split = split_of(key)
        treebank = split == TRAIN and _hash("form", key) % 2 == 0
        rows.append((key if treebank else sentence, label, split))
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
    args = parser.parse_args()
    rows = build_rows()
    write_tsv(rows, args.out)
    counts = Counter((split, label) for _, label, split in rows)
    print(f"wrote {len(rows)} rows to {args.out}: " + ", ".join(f"{s} {l} {n}" for (s, l), n in sorted(counts.items())))


if __name__ == "__main__":
    main()
