"""The examples of the docs pages run, in order, as a reader would paste them.

Each page's ``python`` code blocks run one after the other in one namespace, so a page
can build on its earlier blocks; a block that raises fails the test with the page and
line where it starts.

A block may have a title (```` ```python title="..." ````, shown by mkdocs Material). One
whose title starts with "SQLAlchemy" is SQLAlchemy ORM code, the "before" side of
``migration.md``: it runs only in ``tests/differential/test_migration_examples.py`` (the
one test directory that may import ``sqlalchemy.orm``), in a namespace of its own, unless
its title also names typed_session, when it runs on both sides. Every other block is
typed_session code and runs here.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [
    "index.md",
    "getting-started.md",
    "transactions.md",
    "events.md",
    "relationships.md",
    "validation.md",
    "bulk.md",
    "versioning.md",
    "objects.md",
    "async.md",
    "binds.md",
    "protocols.md",
    "migrations-alembic.md",
    "api-models.md",
    "migration.md",
    "../README.md",  # the front page of the repository and of the package index
]
BLOCK = re.compile(r'^```python(?: title="([^"\n]*)")?\n(.*?)^```', re.MULTILINE | re.DOTALL)
Side = Literal["typed_session", "sqlalchemy"]


def runs_on(title: str) -> set[Side]:
    """The sides a block with this title (``""`` for none) runs on."""
    if not title.startswith("SQLAlchemy"):
        return {"typed_session"}
    return {"sqlalchemy", "typed_session"} if "typed_session" in title else {"sqlalchemy"}


def blocks(page: str, side: Side = "typed_session") -> list[tuple[int, str]]:
    """The (line, source) of each python block of ``page`` that runs on ``side``."""
    text = (DOCS / page).read_text()
    return [
        (text[: m.start()].count("\n") + 2, m.group(2))
        for m in BLOCK.finditer(text)
        if side in runs_on(m.group(1) or "")
    ]


@contextmanager
def run_page(page: str, side: Side = "typed_session") -> Iterator[dict[str, Any]]:
    """Run the blocks of ``page`` for ``side`` in order; yield the namespace they made."""
    found = blocks(page, side)
    assert found, f"{page} has no python examples for {side}"
    # a real module, as the reader's would be: annotations resolve in its globals
    name = f"docs_{page.replace('.', '_').replace('/', '_')}_{side}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        for line, source in found:
            exec(compile(source, f"docs/{page}:{line}", "exec"), module.__dict__)
        yield module.__dict__
    finally:
        del sys.modules[name]


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_of_a_page_run(page: str) -> None:
    with run_page(page):
        pass


def test_every_python_block_of_a_page_is_recognised() -> None:
    # a fence with another info string would be skipped silently by both tests
    for page in PAGES:
        text = (DOCS / page).read_text()
        assert len(BLOCK.findall(text)) == text.count("```python"), page


def test_every_page_with_python_examples_is_run() -> None:
    with_examples = {path.name for path in DOCS.glob("*.md") if "```python" in path.read_text()}
    assert with_examples <= set(PAGES)


def test_the_events_example_leaves_no_global_listener() -> None:
    from typed_session import session_events

    assert not session_events.before_commit.listeners
