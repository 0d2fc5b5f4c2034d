"""What `pip install .` puts on a scoring host: the runtime and the exporter, nothing with a generic name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.support.cli import ROOT


def test_the_wheel_ships_only_runtime_and_export(tmp_path):
    """Built from a copy of the tree (setuptools writes build/ beside the sources), with every top-level package."""
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "models", "out", "build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if "/" in name and ".dist-info/" not in name}
    assert top_level == {"runtime", "export"}
    for subpackage in ("model", "text", "files", "engines"):  # every subpackage ships, not only the top level
        assert f"runtime/{subpackage}/__init__.py" in names
