"""The package as users get it: built, installed into a fresh environment, used.

``python -m build`` runs once per test session: it makes the sdist, then builds the wheel
from the unpacked sdist (so a file the sdist forgets breaks the wheel too). The wheel is
installed into a fresh virtual environment, where the shop demo (``examples/shop.py``)
runs and mypy, pointed at that environment, reads the installed package's types (which
it does only because of ``py.typed``). Building and installing take a few tens of
seconds; the tests are marked ``packaging`` (``-m "not packaging"`` leaves them out).
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION: str = PROJECT["version"]
DIST_NAME = f"typed_session-{VERSION}"


def run(args: list[str], *, cwd: Path) -> str:
    """Run a command outside this test run's environment; fail with its output."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited with {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done.stdout


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    python: Path
    directory: Path


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    return Dists(out / f"{DIST_NAME}.tar.gz", out / f"{DIST_NAME}-py3-none-any.whl")


@pytest.fixture(scope="session")
def installed(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    directory = tmp_path_factory.mktemp("fresh")
    run([sys.executable, "-m", "venv", str(directory / "venv")], cwd=directory)
    python = directory / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", str(dists.wheel)], cwd=directory)
    return Installed(python, directory)


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"{DIST_NAME}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def test_the_wheel_holds_the_package_with_py_typed_and_nothing_else(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as archive:
        names = archive.namelist()
    assert "typed_session/py.typed" in names
    assert "typed_session/__init__.py" in names
    assert "typed_session/_mapping/registry.py" in names
    assert f"{DIST_NAME}.dist-info/licenses/LICENSE" in names
    strays = [n for n in names if not n.startswith(("typed_session/", f"{DIST_NAME}.dist-info/"))]
    assert strays == []  # no tests/, bench/, examples/ or docs/


def test_the_wheel_metadata_says_version_licence_and_python(dists: Dists) -> None:
    metadata = wheel_metadata(dists.wheel)
    assert metadata["Name"] == "typed-session"
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert "Typing :: Typed" in metadata.get_all("Classifier", [])
    requires = metadata.get_all("Requires-Dist", [])
    assert "SQLAlchemy<2.2,>=2.1" in requires
    assert 'psycopg[binary]>=3.2; extra == "postgresql"' in requires
    assert metadata.get_content_type() == "text/plain"  # the README is the long description
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "# typed_session" in metadata.get_payload()


def test_the_sdist_holds_sources_licence_and_changelog_without_tests(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as archive:
        names = {n.removeprefix(f"{DIST_NAME}/") for n in archive.getnames()}
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"} <= names
    assert {"typed_session/py.typed", "typed_session/_session.py"} <= names
    assert not [n for n in names if n.startswith(("tests", "bench", ".venv"))]


def test_the_changelog_describes_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    newest = re.search(r"^## \[(?P<version>[^\]]+)\]", changelog, re.MULTILINE)
    assert newest is not None, "CHANGELOG.md has no '## [version]' heading"
    assert newest["version"] == VERSION


def test_the_demo_runs_on_the_installed_wheel(installed: Installed) -> None:
    where = run(
        [str(installed.python), "-c", "import typed_session; print(typed_session.__file__)"],
        cwd=installed.directory,
    )
    assert Path(where.strip()).is_relative_to(installed.directory / "venv")
    run([str(installed.python), "-m", "pip", "check"], cwd=installed.directory)

    url = f"sqlite:///{installed.directory / 'shop.db'}"
    out = run([str(installed.python), str(ROOT / "examples" / "shop.py"), url], cwd=ROOT)
    assert "INSERT INTO customers" in out
    assert "detached" in out


def test_type_checkers_read_the_installed_package_through_py_typed(
    installed: Installed,
) -> None:
    user_code = installed.directory / "app.py"
    user_code.write_text(
        "from typed_session import Mapped, Registry, column, entity\n"
        "registry = Registry()\n"
        "@entity(registry, table='notes')\n"
        "class Note:\n"
        "    id: Mapped[int] = column(primary_key=True, init=False)\n"
        "    text: Mapped[str]\n"
        "reveal_type(Note(text='x').text)\n"
        "Note(text=1)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file=",
            "--no-incremental",
            "--follow-imports=silent",
            f"--python-executable={installed.python}",
            str(user_code),
        ],
        cwd=installed.directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert 'Revealed type is "str"' in done.stdout, done.stdout
    assert '"Note" has incompatible type "int"; expected "str"' in done.stdout, done.stdout
    assert "missing library stubs or py.typed marker" not in done.stdout
    assert done.stdout.rstrip().endswith("Found 1 error in 1 file (checked 1 source file)")
