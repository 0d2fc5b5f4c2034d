"""--precision: bf16 on OpenVINO and the int8 export, each gated by agreement with fp32, recorded in the footer.

bf16 tests need a CPU with native bf16 and OpenVINO (the `bf16` extra); SCORER_HIDE_BF16=1 makes any host act
as one without bf16, so the refusal and `auto`'s fallback are tested everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.errors import InputError
from runtime.files.parquet_io import METADATA_KEY
from runtime.model.openvino_backend import openvino_version
from runtime.model.precision import HIDE_BF16_ENV, cache_dir, host_cpu
from runtime.scoring.scorer import Scorer
from tests.support.cli import ROOT, assert_clean_error, score, write
from tests.support.models import export_model

TEXTS = ["I love it", "terrible, cold food", "meh", "the plot is thin but the cast is great", ""] * 4

needs_bf16 = pytest.mark.skipif(
    not (host_cpu().bf16 and openvino_version()),
    reason="needs a CPU with avx512_bf16 or amx_bf16 and OpenVINO (pip install '.[bf16]')",
)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test measures agreement afresh, in its own cache dir; the bf16 flags are visible unless a test hides them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(HIDE_BF16_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def int8_model(models: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint, _ = models["distilbert"]
    return export_model(checkpoint, tmp_path_factory.mktemp("int8") / "m", "--quantize", "int8")


def footer(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[METADATA_KEY])


@needs_bf16
def test_bf16_agreement_is_computed_against_fp32_and_cached(models, own_cache):
    model_dir = models["distilbert"][1]
    fp32, bf16 = Scorer(model_dir), Scorer(model_dir, precision="bf16", agreement_texts=TEXTS)
    chosen = bf16.chosen_precision
    assert (chosen.precision, fp32.chosen_precision.precision) == ("bf16", "fp32")
    texts = [*fp32.manifest.probes, *TEXTS]
    reference, candidate = fp32.score(texts).probabilities, bf16.score(texts).probabilities
    assert chosen.agreement.texts == len(texts)
    assert chosen.agreement.label_agreement == float(np.mean(reference.argmax(1) == candidate.argmax(1))) >= 0.99
    assert chosen.agreement.max_abs_diff_probabilities == pytest.approx(np.abs(reference - candidate).max(), abs=1e-6)
    assert 0 < chosen.agreement.max_abs_diff_probabilities < 2e-2  # bf16 rounds: not bit-equal, but close
    assert len(list((own_cache / "onnx-batch-scorer" / "precision").glob("*.json"))) == 1
    again = Scorer(model_dir, precision="bf16", agreement_texts=TEXTS).chosen_precision.agreement
    assert again == chosen.agreement  # read back from the cache, speedup and all
    assert cache_dir() == own_cache / "onnx-batch-scorer" / "precision"


@needs_bf16
def test_bf16_below_the_bar_is_refused_with_one_line(models):
    with pytest.raises(InputError, match=r"agrees with fp32 on 100\.0% of 20 texts .* below the 101% bar"):
        Scorer(models["distilbert"][1], precision="bf16", min_agreement=1.01)
    auto = Scorer(models["distilbert"][1], precision="auto", min_agreement=1.01).chosen_precision
    assert auto.precision == "fp32"  # auto moves on to the next candidate instead


@needs_bf16
def test_bf16_scores_the_cli_and_records_it_in_the_footer(models, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    result = score(models["distilbert"][1], src, tmp_path / "out.parquet", "--precision", "bf16")
    assert result.returncode == 0, result.stderr
    assert "in bf16, agreement 100.0%" in result.stdout
    record = footer(tmp_path / "out.parquet")
    assert record["precision"] == "bf16"
    used = record["precision_used"]
    assert used["precision"] == "bf16" and used["agreement"]["passed"] and used["agreement"]["texts"] == 20
    assert "avx512_bf16" in used["cpu"]["flags"] or "amx_bf16" in used["cpu"]["flags"]
    fp32 = Scorer(models["distilbert"][1])(TEXTS)
    written = pq.read_table(tmp_path / "out.parquet")
    assert written["label"].to_pylist() == [answer["label"] for answer in fp32]
    assert np.allclose(written["score"].to_numpy(), [answer["score"] for answer in fp32], atol=2e-2)


@needs_bf16
def test_auto_takes_bf16_where_the_host_has_it(models):
    assert Scorer(models["distilbert"][1], precision="auto").chosen_precision.precision == "bf16"


def test_without_bf16_auto_stays_fp32_and_says_nothing_of_bf16(models, monkeypatch):
    monkeypatch.setenv(HIDE_BF16_ENV, "1")
    chosen = Scorer(models["distilbert"][1], precision="auto").chosen_precision
    assert chosen.precision == "fp32" and chosen.agreement is None
    assert not host_cpu().bf16 and "bf16" not in (chosen.note or "")


def test_without_bf16_the_cli_refuses_bf16_with_one_line(models, tmp_path, monkeypatch):
    monkeypatch.setenv(HIDE_BF16_ENV, "1")
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    result = score(models["distilbert"][1], src, tmp_path / "out.parquet", "--precision", "bf16")
    assert_clean_error(result, "needs a CPU with native bf16", f"{HIDE_BF16_ENV} is set", "--precision fp32")
    assert not (tmp_path / "out.parquet").exists()


def test_int8_export_scores_as_int8_with_its_export_agreement(int8_model, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    for flags in ((), ("--precision", "int8"), ("--precision", "auto")):
        result = score(int8_model, src, tmp_path / "out.parquet", *flags)
        assert result.returncode == 0, result.stderr
        used = footer(tmp_path / "out.parquet")["precision_used"]
        assert used["precision"] == "int8" and used["agreement"]["measured_on"] == "export"
        assert used["agreement"]["label_agreement"] >= 0.99 and used["agreement"]["texts"] > 20
    with pytest.raises(InputError, match="below the 101% bar"):
        Scorer(int8_model, precision="int8", min_agreement=1.01)


@pytest.mark.parametrize(
    ("model", "flags", "fragments"),
    [
        ("fp32", ("--precision", "fp16"), ("--precision", "invalid choice: 'fp16'")),
        ("fp32", ("--precision", "int8"), ("--precision int8 needs the --quantize int8 export",)),
        ("int8", ("--precision", "fp32"), ("holds the --quantize int8 export", "--precision fp32")),
        ("int8", ("--precision", "bf16"), ("holds the --quantize int8 export", "--precision bf16")),
    ],
)
def test_precision_misuse_is_one_error_line(models, int8_model, tmp_path, model, flags, fragments):
    model_dir = models["distilbert"][1] if model == "fp32" else int8_model
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    assert_clean_error(score(model_dir, src, tmp_path / "out.parquet", *flags), *fragments)


def test_resume_rescores_when_the_precision_changes(int8_model, tmp_path):
    src = write(tmp_path / "in.parquet", pa.table({"text": TEXTS}))
    out = tmp_path / "out.parquet"
    assert score(int8_model, src, out).returncode == 0
    assert "already done" in score(int8_model, src, out, "--resume").stdout
    assert "already done" not in score(int8_model, src, out, "--resume", "--precision", "int8").stdout
    assert footer(out)["precision"] == "int8"


def test_verify_says_what_this_host_runs(models, monkeypatch):
    monkeypatch.setenv(HIDE_BF16_ENV, "1")
    result = subprocess.run(
        [sys.executable, "-m", "runtime.verify", str(models["distilbert"][1])], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[-1]
    assert line.startswith("precisions on this host (") and ": fp32;" in line, line
    assert "bf16 needs avx512_bf16 or amx_bf16" in line and "int8 needs the --quantize int8 export" in line
