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


LONG = "word " * 600  # past the model's 512 tokens


@pytest.mark.parametrize("function", ["sigmoid", "none", "SOFTMAX", "ClassificationFunction.SIGMOID"])
@pytest.mark.parametrize("top_k", ["default", None])
def test_call_time_function_to_apply_as_the_pipeline(pipe_and_scorer, function, top_k):
    from transformers.pipelines.text_classification import ClassificationFunction

    pipe, scorer = pipe_and_scorer
    if function.startswith("ClassificationFunction."):
        function = ClassificationFunction[function.split(".")[1]]
    kwargs = {"function_to_apply": function} | ({} if top_k == "default" else {"top_k": top_k})
    assert_same(scorer(TEXTS, **kwargs), pipe(TEXTS, **kwargs))
    assert_same(scorer(TEXTS), pipe(TEXTS))  # for that call only


@pytest.mark.parametrize("truncation", [True, "longest_first"])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_call_time_truncation_and_batch_size_as_the_pipeline(pipe_and_scorer, truncation, batch_size):
    pipe, scorer = pipe_and_scorer
    inputs = [*TEXTS, LONG]
    kwargs = {"truncation": truncation, "batch_size": batch_size}
    assert_same(scorer(inputs, **kwargs), pipe(inputs, **kwargs))


@pytest.mark.parametrize("truncation", [False, "do_not_truncate"])
def test_truncation_false_cuts_nothing_and_names_a_text_that_would_be_cut(pipe_and_scorer, truncation):
    pipe, scorer = pipe_and_scorer
    assert_same(scorer(TEXTS, truncation=truncation), pipe(TEXTS, truncation=truncation))
    with pytest.raises(ValueError, match="item 2 is longer than the model's 512 tokens"):
        scorer([TEXTS[0], None, LONG], truncation=truncation)
    with pytest.raises(RuntimeError):  # the pipeline fails inside the model
        pipe(LONG, truncation=truncation)


@pytest.mark.parametrize("top_k", [None, 1, 2])
@pytest.mark.parametrize("inputs", [TEXTS, TEXTS[0], PAIR], ids=["list", "single", "pair"])
def test_constructor_top_k_as_the_pipeline(models, inputs, top_k):
    checkpoint, model_dir = models["bert"]
    pipe = pipeline("text-classification", model=str(checkpoint), device="cpu", top_k=top_k)
    scorer = Scorer(model_dir, top_k=top_k)
    assert_same(scorer(inputs), pipe(inputs))  # a single text gets a list of one list, as the pipeline does
    assert_same(scorer(inputs, top_k=1), pipe(inputs, top_k=1))  # the call's top_k wins


@pytest.mark.parametrize(
    "inputs,message",
    [
        (["a", 5], "item 1 is of type int, not str"),
        (5, "item 0 is of type int, not str"),
        ([{"text": "a", "text_pair": 3.5}], "item 0's text_pair is of type float, not str"),
        ([{"text": b"a"}], "item 0's text is of type bytes, not str"),
    ],
)
def test_an_item_that_is_not_a_text_is_named(pipe_and_scorer, inputs, message):
    _, scorer = pipe_and_scorer
    with pytest.raises(TypeError, match=message):
        scorer(inputs)


@pytest.mark.parametrize(
    "kwargs,message",
    [({"truncation": "only_second"}, "truncation must be"), ({"batch_size": 0}, "batch_size"),
     ({"function_to_apply": "relu"}, "function_to_apply must be")],
)
def test_bad_call_arguments_are_one_clear_value_error(pipe_and_scorer, kwargs, message):
    _, scorer = pipe_and_scorer
    with pytest.raises(ValueError, match=message):
        scorer(TEXTS, **kwargs)
