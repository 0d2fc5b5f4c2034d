"""The import contracts in pyproject.toml ([tool.importlinter]): runtime's layers point one way (errors, model,
text, scoring, files, engines, CLIs) and a scoring host never imports torch, transformers, optimum or export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import ROOT


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "2 kept" in result.stdout, result.stdout
