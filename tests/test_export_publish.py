"""`python -m export --out`: what it refuses to replace, and that publishing is one atomic step, kills included."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.files.storage import durable_exchange, exchange_paths
from runtime.model.model_dir import read_manifest
from tests.support.cli import ROOT, assert_clean_error


def run_export(checkpoint: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "export", "--checkpoint", str(checkpoint), "--out", str(out), *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ROOT (itself included) with its bytes (None for a dir), symlinks not followed."""
    entries = [root, *root.rglob("*")] if root.is_dir() else [root]
    return {str(path.relative_to(root.parent)): None if path.is_dir() else path.read_bytes() for path in entries}


def hidden_beside(out: Path) -> list[str]:
    return sorted(path.name for path in out.parent.iterdir() if path.name.startswith(f".{out.name}"))


@pytest.fixture
def workspace(models, tmp_path) -> Path:
    """tmp_path/ws holding a copy of the distilbert checkpoint as ws/ckpt, and a symlink ws/link to it."""
    checkpoint = shutil.copytree(models["distilbert"][0], tmp_path / "ws" / "ckpt")
    (tmp_path / "ws" / "link").symlink_to(checkpoint, target_is_directory=True)
    return tmp_path / "ws"


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
@pytest.mark.parametrize("out", ["ckpt", "link", "ckpt/model", "link/model", "."])
def test_out_is_never_the_checkpoint_or_around_or_inside_it(workspace, out, force):
    """--out equal to --checkpoint used to delete the checkpoint's weights and exit 0; --force does not allow it."""
    before = snapshot(workspace)
    result = run_export(workspace / "ckpt", workspace / out, *force)
    assert_clean_error(result, f"--out {workspace / out}", "checkpoint dir", "outside")
    assert snapshot(workspace) == before


def test_out_that_is_not_a_model_dir_is_kept_unless_forced(models, tmp_path):
    """A folder of unrelated files, or a file, is refused as it is (nothing moved aside); --force replaces it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8 not really a cat")
    file = tmp_path / "notes.txt"
    file.write_text("keep me\n")
    before = snapshot(tmp_path)
    for out in (folder, file):
        result = run_export(models["bert"][0], out)
        assert_clean_error(result, f"--out {out}", "not a model dir", "--force")
    assert snapshot(tmp_path) == before

    result = run_export(models["bert"][0], folder, "--force")
    assert result.returncode == 0, result.stderr
    assert read_manifest(folder).labels == ["contradiction", "entailment", "neutral"]
    assert not (folder / "cat.jpg").exists() and hidden_beside(folder) == []


def test_exchange_swaps_in_one_step_on_this_system(tmp_path):
    """The atomic path, not the three-rename fallback, is what runs here (Linux, a filesystem with the flag)."""
    for name in ("new", "old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(name)
    assert exchange_paths(tmp_path / "new", tmp_path / "old")
    assert [path.name for path in (tmp_path / "old").iterdir()] == ["new.txt"]
    assert [path.name for path in (tmp_path / "new").iterdir()] == ["old.txt"]
    (tmp_path / "file").write_text("a file")
    durable_exchange(tmp_path / "new", tmp_path / "file")  # a dir over a file: the file goes to the source's name
    assert (tmp_path / "file" / "old.txt").is_file() and (tmp_path / "new").read_text() == "a file"
    durable_exchange(tmp_path / "old", tmp_path / "missing")  # no target: a plain rename
    assert (tmp_path / "missing" / "new.txt").is_file() and not (tmp_path / "old").exists()


def kill_when(command: list[str], reached: Callable[[int], bool], timeout: float = 600) -> bool:
    """Run COMMAND and SIGKILL it the moment `reached(its pid)` (polled every millisecond); False if it ended first."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if reached(process.pid):
                process.send_signal(signal.SIGKILL)
                return True
            time.sleep(0.001)
        return False
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_an_export_killed_at_any_step_leaves_the_old_model_or_the_new_one(models, tmp_path):
    """SIGKILL while staging is written, while it is validated, and just after the swap: --out is always a whole,
    loadable model dir (the old one, or the new one once swapped in), and the next export removes the leftovers."""
    out = shutil.copytree(models["distilbert"][1], tmp_path / "out")
    old_labels, new_labels = read_manifest(out).labels, ["contradiction", "entailment", "neutral"]
    old_inode = out.stat().st_ino
    command = [sys.executable, "-m", "export", "--checkpoint", str(models["bert"][0]), "--out", str(out)]

    def staged(name: str) -> Callable[[int], bool]:
        """This run's staging dir holds NAME (or, for "", exists); earlier runs' leftovers do not count."""

        def reached(pid: int) -> bool:
            mine = [path for path in tmp_path.glob(".out.tmp-*") if path.name.split("-")[1] == str(pid)]
            return any((staging / name).exists() for staging in mine)

        return reached

    def swapped(pid: int) -> bool:
        try:
            return out.stat().st_ino != old_inode
        except FileNotFoundError:  # no --out at all: the moment a two-step publish would be caught
            return True

    moments = {
        "staging dir created": staged(""),
        "ONNX file written": staged("model.onnx"),
        "manifest written, validation running": staged("manifest.json"),
        "new dir swapped in": swapped,
    }
    found = {}
    for moment, reached in moments.items():
        assert kill_when(command, reached), f"the export ended before '{moment}'"
        found[moment] = read_manifest(out).labels  # raises unless --out is a whole model dir
    assert found == {
        "staging dir created": old_labels,
        "ONNX file written": old_labels,
        "manifest written, validation running": old_labels,
        "new dir swapped in": new_labels,
    }
    assert hidden_beside(out), "the killed exports left no staging dir: the clean-up below tests nothing"

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert read_manifest(out).labels == new_labels
    assert hidden_beside(out) == []
