"""The examples of the docs pages run, in order, as a reader would paste them.

Each page's ``python`` code blocks run one after the other in one namespace, so a page
can build on its earlier blocks; a block that raises fails the test with the page and
line where it starts.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

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
]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[tuple[int, str]]:
    text = (DOCS / page).read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_of_a_page_run(page: str) -> None:
    found = blocks(page)
    assert found, f"{page} has no python examples"
    # a real module, as the reader's would be: annotations resolve in its globals
    name = f"docs_{page.replace('.', '_')}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        for line, source in found:
            exec(compile(source, f"docs/{page}:{line}", "exec"), module.__dict__)
    finally:
        del sys.modules[name]


def test_the_events_example_leaves_no_global_listener() -> None:
    from typed_session import session_events

    assert not session_events.before_commit.listeners
