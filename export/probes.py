"""Texts that exercise the edges of a text classifier: padding, near-empty input and truncation."""

from __future__ import annotations

import random
from pathlib import Path

from runtime.errors import DataError

SEED_TEXTS = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]
MAX_AGREEMENT_TEXTS = 10_000  # enough for a 0.1% resolution, few enough to score five times


def probe_texts(max_length: int) -> list[str]:
    """The seed's sentences, tiny and empty texts, odd scripts and texts past the max length."""
    over_max = " ".join(["terrific"] * (max_length + 40))
    return [
        *SEED_TEXTS,
        "",
        " ",
        "a",
        "!",
        "ok",
        "The film was not bad at all, and the ending surprised me.",
        "Terrible service; the food arrived cold and the waiter was rude.",
        "it 's a charming and often affecting journey .",
        "Meh.",
        "I expected more from this book, but it has its moments.",
        "Absolutely wonderful 😊👍",
        "这部电影很好看",
        "هذا المنتج سيء",
        "tab\tand\nnewline and \x00 nul",
        over_max,
        "short " + over_max,
        "Best purchase I have made all year, would buy it again tomorrow.",
    ]


def generated_texts(count: int = 872, seed: int = 0) -> list[str]:
    """Review-like sentences of 5 to 50 words from a fixed seed: no data set needed."""
    rng = random.Random(seed)
    words = (
        "the film book plot cast acting story ending music scenes was is were not very quite rather "
        "good bad great dull charming tedious funny moving slow sharp clumsy and but with a an of it "
        "its this that too never always again director writer characters"
    ).split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 50))) + " ." for _ in range(count)]


def agreement_texts(max_length: int, count: int = 400, own: list[str] | None = None) -> list[str]:
    """Enough texts for a meaningful agreement rate: the probes plus the user's own texts, or generated reviews."""
    return probe_texts(max_length) + (own if own is not None else generated_texts(count))


def read_agreement_texts(path: Path, limit: int = MAX_AGREEMENT_TEXTS) -> list[str]:
    """The user's own texts for the int8 agreement check: a Parquet file's `text` column or one text per line,
    thinned evenly to at most `limit` (PyTorch scores them once and int8 up to four times).

    Why: generated word salad sits near the decision boundary, where int8 noise flips answers that real text
    would not; texts like the ones the model will score judge int8 on what matters.
    """
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            from runtime.files.parquet_io import check_text_column, texts_of

            parquet = pq.ParquetFile(path)
            hint = "a `text` column in the --agreement-texts file"
            check_text_column(parquet.schema_arrow, "text", path, option=hint)
            batches = parquet.iter_batches(columns=["text"])
            texts = [text for batch in batches for text in texts_of(batch, "text") if text]
        else:
            texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(
            f"--agreement-texts {path}: cannot read it ({type(exc).__name__}); give a text file with one text "
            "per line or a Parquet file with a `text` column"
        ) from None
    if not texts:
        raise DataError(f"--agreement-texts {path}: no texts in it; give at least one non-empty text")
    return texts[:: -(-len(texts) // limit)]


def pair_probes(max_length: int) -> list[tuple[str, str]]:
    """Text pairs for models scored with a text_pair: each side long or short (longest-first truncation) or empty.

    An empty pair is scored as no pair (the pipeline drops it); a blank one (" ") is still a pair.
    """
    long = " ".join(["terrific"] * (max_length + 40))
    short = "The plot is thin."
    return [
        (SEED_TEXTS[0], SEED_TEXTS[1]),
        ("A man is sleeping on the couch.", "Someone rests."),
        (long, short),
        (short, long),
        (long, long + " and more"),
        ("", ""),
        ("", short),
        (short, ""),
        (long, ""),
        (short, " "),
        ("这部电影很好看", "Absolutely wonderful 😊👍"),
    ]
