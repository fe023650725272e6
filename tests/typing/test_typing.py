"""Run mypy and basedpyright over ``tests/typing``: ``pytest`` alone catches typing regressions.

The ``check_*.py`` modules beside this one are never imported: they are code a user
would write, with ``assert_type`` for what must be inferred and ``# type: ignore[code]``
on each line that must stay rejected (``warn_unused_ignores`` in mypy,
``reportUnnecessaryTypeIgnoreComment`` in basedpyright turn a rejection that disappears
into an error). This duplicates ``scripts/check.sh`` on purpose.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPING_DIR = Path(__file__).resolve().parent
CHECK_FILES = sorted(TYPING_DIR.glob("check_*.py"))
TIMEOUT_SECONDS = 600


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env=env,
    )


def _basedpyright() -> Path:
    exe = Path(sys.executable).with_name("basedpyright")
    if not exe.exists():
        pytest.skip(f"basedpyright is not installed next to {sys.executable}")
    return exe


def _report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def test_check_files_exist() -> None:
    names = {p.name for p in CHECK_FILES}
    assert {"check_entity.py", "check_factory.py", "check_session.py"} <= names


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.name)
def test_check_file_is_valid_python(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_mypy_accepts_tests_typing() -> None:
    proc = _run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "tests/typing"])
    assert proc.returncode == 0, _report(proc)
    assert "Success" in proc.stdout, _report(proc)


def test_basedpyright_accepts_tests_typing() -> None:
    proc = _run([str(_basedpyright()), "tests/typing"])
    assert proc.returncode == 0, _report(proc)
    assert "0 errors" in proc.stdout, _report(proc)


def test_public_surface_is_fully_typed() -> None:
    """``basedpyright --verifytypes``: every exported symbol has a known type (100%).

    ``--ignoreexternal`` leaves out the completeness of SQLAlchemy's and pydantic's own
    annotations, which is theirs to fix; ``PYTHONPATH`` because pyright cannot follow an
    editable install's import hook; ``PATH`` so that it finds this interpreter's packages.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [str(_basedpyright()), "--verifytypes", "typed_session", "--ignoreexternal"]
    proc = _run([*args, "--outputjson"], env=env)
    report = json.loads(proc.stdout)
    summary = report["typeCompleteness"]
    assert summary["packageRootDirectory"] == str(ROOT / "typed_session"), _report(proc)
    assert summary["exportedSymbolCounts"]["withKnownType"] > 0, _report(proc)
    assert summary["completenessScore"] == 1, _report(_run(args, env=env))
