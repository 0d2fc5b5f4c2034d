"""Batch planning: every row once, like lengths together, and each budget respected."""

from __future__ import annotations

import numpy as np

from runtime.text.batching import plan_batches


def test_every_row_once_within_every_budget():
    lengths = np.random.default_rng(0).integers(1, 513, 2000)
    batches = plan_batches(lengths, max_rows=32, max_tokens=8192, max_attention=1 << 20)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        longest = int(lengths[batch].max())
        assert len(batch) <= 32 and len(batch) * longest <= 8192 and len(batch) * longest**2 <= 1 << 20


def test_attention_caps_long_rows_and_leaves_short_ones_alone():
    assert {len(batch) for batch in plan_batches(np.full(64, 512))} == {4}  # 16 by tokens alone
    assert {len(batch) for batch in plan_batches(np.full(64, 64))} == {32}
    assert [len(batch) for batch in plan_batches(np.array([5000, 3]))] == [1, 1]  # a row past every budget
