"""The demo model built by `make demo`: its accuracy on SST-2 dev and on the corpus's held-out split, the
sample it scores, and the fingerprint that decides whether a second `make demo` retrains."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.support.corpus import sst2_accuracy
from tests.support.cli import ROOT
from tests.support.corpus import SST2_DEV

DEMO_MODEL = ROOT / "models" / "demo"
MIN_ACCURACY = 0.84  # issue 15; the model reaches 85.0% (README, "The demo")
MIN_HELDOUT_ACCURACY = 0.88
needs_demo_model = pytest.mark.skipif(
    not DEMO_MODEL.exists(), reason="models/demo is not built; run `make demo` first"
)


@pytest.mark.skipif(not SST2_DEV.exists(), reason=f"SST-2 dev set not found at {SST2_DEV} (../shared is absent)")
@needs_demo_model
def test_demo_model_accuracy_on_sst2_dev():
    assert sst2_accuracy(DEMO_MODEL) >= MIN_ACCURACY


def test_demo_sample_is_the_heldout_split_only():
    from demo.__main__ import EMPTY_ROWS, sample_table
    from demo.train import HELDOUT, TRAIN, load_corpus

    sample = sample_table().to_pydict()
    texts = [text for text in sample["text"] if text is not None]
    assert len(sample["text"]) - len(texts) == EMPTY_ROWS
    assert texts == load_corpus(split=HELDOUT)[0]
    assert set(texts).isdisjoint(load_corpus(split=TRAIN)[0])


@needs_demo_model
def test_heldout_accuracy_that_make_demo_prints():
    """Scores the sample as `make demo` does and checks the figure it prints against a plain count."""
    from demo.__main__ import heldout_accuracy, sample_table
    from runtime.scoring.scorer import Scorer

    sample = sample_table()
    rows = [(text, expected) for text, expected in zip(sample["text"].to_pylist(), sample["expected"].to_pylist())
            if text is not None]
    scorer = Scorer(DEMO_MODEL)
    labels = [scorer.labels[i] for i in scorer.score([text for text, _ in rows]).label_ids]
    right = sum(label == expected for label, (_, expected) in zip(labels, rows))
    scored = pa.table({"label": labels + [None], "expected": [expected for _, expected in rows] + [None]})
    assert heldout_accuracy(scored) == (right / len(rows), len(rows))
    assert right / len(rows) >= MIN_HELDOUT_ACCURACY


def test_checkpoint_is_reused_until_the_corpus_changes(tmp_path, monkeypatch, capsys):
    """Training writes into a staging dir (the printed path is the final one); an unchanged corpus and recipe
    reuse the checkpoint, a changed corpus retrains."""
    import demo.__main__ as demo_main
    from demo.train import Recipe, fingerprint

    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("text\tlabel\tsplit\nA fine film.\tPOSITIVE\ttrain\nA dull film.\tNEGATIVE\ttrain\n"
                      "A fun film.\tPOSITIVE\theldout\n")
    monkeypatch.setattr(demo_main, "CHECKPOINT", tmp_path / "demo-checkpoint")
    monkeypatch.setattr(demo_main, "CORPUS", corpus)
    monkeypatch.setattr(demo_main, "RECIPE", Recipe(epochs=1, batch_size=2))
    demo_main.build_checkpoint()
    printed = capsys.readouterr().out
    assert str(tmp_path / "demo-checkpoint") in printed and ".partial" not in printed
    assert (tmp_path / "demo-checkpoint" / "model.safetensors").is_file()
    assert demo_main.recorded_fingerprint(tmp_path / "demo-checkpoint") == fingerprint(demo_main.RECIPE, corpus)

    demo_main.build_checkpoint()
    assert "saved the fine-tuned checkpoint" not in capsys.readouterr().out

    with corpus.open("a") as handle:
        handle.write("A grim film.\tNEGATIVE\ttrain\n")
    demo_main.build_checkpoint()
    assert "trained on 3 examples" in capsys.readouterr().out
    assert demo_main.recorded_fingerprint(tmp_path / "demo-checkpoint") == fingerprint(demo_main.RECIPE, corpus)
