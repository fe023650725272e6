"""The documentation site builds, warnings as errors, and covers what it promises.

``mkdocs build --strict`` (mkdocs.yml) fails on a broken link or anchor, a page left out
of the navigation and a docstring mkdocstrings cannot read; the build runs once per
session into a temporary directory, and the tests read what it wrote: the API reference
has an entry for every public name, every page of ``docs/`` is published, and the
performance chart is the one the committed benchmark results draw.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import typed_session
import typed_session.asyncio
import typed_session.protocols
from bench import chart

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: the pages issue 19 asks for, beside the API reference (reference.md)
REQUIRED_PAGES = {
    "index.md",
    "getting-started.md",
    "migration.md",
    "transactions.md",
    "events.md",
    "relationships.md",
    "objects.md",
    "binds.md",
    "async.md",
    "bulk.md",
    "validation.md",
    "versioning.md",
    "architecture.md",
    "performance.md",
    "protocols.md",
    "reference.md",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_every_required_page_exists() -> None:
    assert {p.name for p in DOCS.glob("*.md")} >= REQUIRED_PAGES


def test_every_page_is_published(site: Path) -> None:
    for page in DOCS.glob("*.md"):
        name = "" if page.stem == "index" else f"{page.stem}/"
        assert (site / name / "index.html").is_file(), f"{page.name} is not in the site"


def test_the_reference_documents_every_public_name(site: Path) -> None:
    html = (site / "reference" / "index.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([\w.]+)"', html))
    for module in (typed_session, typed_session.asyncio):
        missing = [n for n in module.__all__ if f"{module.__name__}.{n}" not in anchors]
        assert not missing, f"not in the API reference: {module.__name__}.{missing}"
    assert "typed_session.protocols" in anchors


def test_the_reference_shows_docstrings_and_signatures(site: Path) -> None:
    html = (site / "reference" / "index.html").read_text(encoding="utf-8")
    # a summary line of a docstring, and a parameter of a signature
    assert "Like <code>get</code>, but raise instead of returning <code>None</code>" in html
    assert "populate_existing" in html


def test_the_published_chart_is_the_one_the_results_draw(site: Path) -> None:
    drawn = chart.render()
    assert (DOCS / "performance.svg").read_text(encoding="utf-8") == drawn, (
        "docs/performance.svg is stale: run .venv/bin/python -m bench.chart"
    )
    assert (site / "performance.svg").read_text(encoding="utf-8") == drawn
    assert 'src="../performance.svg"' in (site / "performance" / "index.html").read_text(
        encoding="utf-8"
    )


def test_the_chart_draws_a_bar_per_implementation_and_workload() -> None:
    svg = chart.render()
    bars = re.findall(r'<rect class="bar" ', svg)
    assert len(bars) == len(chart.BACKENDS) * len(chart.WORKLOADS) * len(chart.SERIES)
    ratios = chart.ratios(chart.RESULTS / "peers-postgresql.json")
    assert set(ratios) == set(chart.WORKLOADS)
    assert f"{ratios['insert']['typed_session']:.2f}x" in svg
