"""`Scorer(dir)(...)` answers in the shapes of `pipeline("text-classification")`, computed in the same test."""

from __future__ import annotations

import pytest
from transformers import pipeline

from runtime import Scorer

TEXTS = ["I'm a good person", "I think that image is NSFW", "Wow. I love it"]
PAIR = {"text": "A man sleeps.", "text_pair": "Someone is resting on a sofa."}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pipe_and_scorer(models):
    checkpoint, model_dir = models["bert"]  # three labels, so ranking and top_k cuts are visible
    return pipeline("text-classification", model=str(checkpoint), device="cpu"), Scorer(model_dir)


def assert_same(ours, theirs) -> None:
    """Same nesting, same labels in the same order, scores within tolerance."""
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys() and ours["label"] == theirs["label"]
        assert ours["score"] == pytest.approx(theirs["score"], abs=TOLERANCE)
        return
    assert isinstance(ours, list) and len(ours) == len(theirs), (ours, theirs)
    for mine, reference in zip(ours, theirs):
        assert_same(mine, reference)


@pytest.mark.parametrize("inputs", [TEXTS, TEXTS[0], PAIR, [PAIR, PAIR]], ids=["list", "single", "pair", "pairs"])
@pytest.mark.parametrize("top_k", ["default", None, 1, 2])
def test_shapes_and_ranking_match_the_pipeline(pipe_and_scorer, inputs, top_k):
    pipe, scorer = pipe_and_scorer
    kwargs = {} if top_k == "default" else {"top_k": top_k}
    assert_same(scorer(inputs, **kwargs), pipe(inputs, **kwargs))


@pytest.mark.parametrize("top_k", ["default", None])
def test_a_missing_text_gives_none_in_its_place(pipe_and_scorer, top_k):
    pipe, scorer = pipe_and_scorer
    kwargs = {} if top_k == "default" else {"top_k": top_k}
    answers = scorer([None, TEXTS[2], None], **kwargs)
    assert answers[0] is None and answers[2] is None
    assert_same(answers[1], pipe([TEXTS[2]], **kwargs)[0])
    with pytest.raises(ValueError):  # the pipeline refuses None; we keep the row instead
        pipe([None])
