"""scripts/setup.sh as the demo and the tests call it, run on a copy of the repository's
scripts with a stand-in virtualenv whose installers record what they were asked to do."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls"
"""


def checkout(tmp_path: Path) -> Path:
    """The scripts and requirement files, with a .venv whose python, pip and uv only record."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts")
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip", "uv"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    return tmp_path


def setup(repo: Path, *args: str) -> list[str]:
    done = subprocess.run(["bash", "scripts/setup.sh", *args], cwd=repo, capture_output=True, text=True, check=True)
    assert "installing" in done.stdout  # says what it does
    calls = (repo / ".venv" / "calls").read_text().splitlines()
    (repo / ".venv" / "calls").unlink()
    return calls


def test_the_demo_installs_the_runtime_requirements_only_and_not_quietly(tmp_path):
    repo = checkout(tmp_path)
    calls = setup(repo, "runtime")
    assert [c for c in calls if "-r" in c.split()] == ["uv pip install --python .venv/bin/python -r requirements.txt"]
    assert not any("--quiet" in c or " -q" in c for c in calls)
    assert setup_is_a_no_op(repo, "runtime")
    # the tests need the tools on top: a runtime-only virtualenv is not enough for them
    assert [c for c in setup(repo, "dev") if "-r" in c.split()] == [
        "uv pip install --python .venv/bin/python -r requirements-dev.txt"]
    assert setup_is_a_no_op(repo, "runtime") and setup_is_a_no_op(repo, "dev")


def setup_is_a_no_op(repo: Path, mode: str) -> bool:
    subprocess.run(["bash", "scripts/setup.sh", mode], cwd=repo, capture_output=True, text=True, check=True)
    return not (repo / ".venv" / "calls").exists()


def test_the_demo_and_test_scripts_choose_their_level():
    assert "scripts/setup.sh runtime" in (ROOT / "scripts" / "demo.sh").read_text()
    assert "scripts/setup.sh dev" in (ROOT / "scripts" / "test.sh").read_text()
    runtime = (ROOT / "requirements.txt").read_text()
    for tool in ("pytest", "schemathesis", "playwright", "hypothesis", "ruff", "mypy"):
        assert tool not in runtime
