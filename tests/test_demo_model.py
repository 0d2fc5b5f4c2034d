"""The demo model built by `make demo` clears the accuracy bar on SST-2 dev."""

from __future__ import annotations

import pytest

from benchmarks.accuracy import sst2_accuracy
from tests.conftest import ROOT, SST2_DEV

DEMO_MODEL = ROOT / "models" / "demo"
MIN_ACCURACY = 0.80


@pytest.mark.skipif(not SST2_DEV.exists(), reason=f"SST-2 dev set not found at {SST2_DEV} (../shared is absent)")
@pytest.mark.skipif(not DEMO_MODEL.exists(), reason="models/demo is not built; run `make demo` first")
def test_demo_model_accuracy_on_sst2_dev():
    assert sst2_accuracy(DEMO_MODEL) >= MIN_ACCURACY


def test_demo_says_where_the_checkpoint_is_after_the_rename(tmp_path, monkeypatch, capsys):
    """The training step writes into a staging dir; what it prints must be the path that exists afterwards."""
    import functools

    import demo.__main__ as demo_main
    from demo.train import train

    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("text\tlabel\nA fine film.\tPOSITIVE\nA dull film.\tNEGATIVE\n")
    monkeypatch.setattr(demo_main, "CHECKPOINT", tmp_path / "demo-checkpoint")
    monkeypatch.setattr(demo_main, "train", functools.partial(train, epochs=1, corpus=corpus))
    demo_main.build_checkpoint()
    printed = capsys.readouterr().out
    assert str(tmp_path / "demo-checkpoint") in printed and ".partial" not in printed
    assert (tmp_path / "demo-checkpoint" / "model.safetensors").is_file()
