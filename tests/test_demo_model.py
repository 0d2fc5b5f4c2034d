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
