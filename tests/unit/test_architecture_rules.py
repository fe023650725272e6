"""The layering rules an import checker cannot see, checked on the package's source.

1. Only ``_lifecycle.py`` assigns an object's lifecycle fields (``InstanceState.identity``,
   ``identity_map``, ``deleted``, ``strong``, ``expired``, the change history...), so every
   transition has one home and one place for its event.
2. Only ``_persistence.py`` and ``_loading.py`` execute statements.
3. Only ``_core.py`` names private SQLAlchemy Core attributes, keyword arguments or
   modules, so a Core upgrade breaks in one place.
4. Nothing below the session imports ``_session.py`` (only ``__init__.py``,
   ``_objects.py`` and ``_factory.py``, which are built on it, do): the transaction and
   the states reach the session through their owner protocols.

Each rule is a function from one module's syntax tree to its violations; the last tests
feed each rule a snippet that breaks it, so a rule that silently stops matching fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "typed_session"

LIFECYCLE_FIELDS = frozenset(
    {
        "identity",
        "identity_token",
        "identity_map",
        "deleted",
        "strong",
        "expired",
        "committed",
        "modified",
    }
)
#: where a state is made: the one function outside ``_lifecycle.py`` that gives lifecycle
#: fields a value (their first one; a loaded row's state is born persistent)
STATE_CONSTRUCTOR = ("_state.py", "new_instance_state")
EXECUTING_CALLS = frozenset({"execute", "exec_driver_sql"})
#: executing when given a statement (``conn.scalars(stmt)``), not on a result (``.scalars()``)
EXECUTING_WITH_STATEMENT = frozenset({"scalar", "scalars"})
#: receivers a call on which is not an execution here: the facade's own methods (on
#: ``self`` in the session, on ``session`` in what is built on it: ``Query`` runs through
#: ``session.scalars()``, which autoflushes and calls ``loading``), and the functions of
#: the two modules that do execute
DELEGATING_RECEIVERS = frozenset({"self", "session", "loading", "persistence"})
#: Core names that start with an underscore but are documented public API (``Row``'s)
PUBLIC_UNDERSCORE_NAMES = frozenset({"_mapping", "_asdict", "_fields", "_tuple", "_t"})
#: the session itself, and what is built on it: the package's exports, the object helpers,
#: the session factory, the sharded and the replica sessions (subclasses)
MODULES_ABOVE_THE_SESSION = frozenset(
    {
        "_session.py",
        "_owner.py",
        "__init__.py",
        "_objects.py",
        "_factory.py",
        "asyncio.py",
        "_async_session.py",
        "_async_factory.py",
        "_sharding.py",
        "_replicas.py",
    }
)
#: modules that may not name the session even for annotations (they talk to protocols)
NEVER_NAME_THE_SESSION = frozenset({"_transaction.py", "_state.py", "_instrumentation.py"})
#: Core modules that are internal even though their names are not underscored
PRIVATE_CORE_MODULES = frozenset(
    {
        "sqlalchemy.engine.result",
        "sqlalchemy.sql.util",
        "sqlalchemy.util",
        "sqlalchemy.util.concurrency",
    }
)


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _own_private_names(modules: dict[str, ast.Module]) -> frozenset[str]:
    """Underscored names typed_session defines itself (attributes, methods, slots)."""
    names: set[str] = set()
    # _core.py is left out: what it names is Core's, not ours
    for tree in (tree for name, tree in modules.items() if name != "_core.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name.startswith("_"):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("_")
                and node.value.isidentifier()
            ):
                names.add(node.value)  # __slots__ entries
    return frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))


def _assigned_attributes(tree: ast.Module) -> Iterator[tuple[ast.Attribute, str | None]]:
    """Every attribute assignment, with the name of the class it is written in."""

    def visit(node: ast.AST, cls: str | None) -> Iterator[tuple[ast.Attribute, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from visit(child, child.name)
                continue
            targets: list[ast.expr] = []
            if isinstance(child, ast.Assign):
                targets = list(child.targets)
            elif isinstance(child, ast.AugAssign | ast.AnnAssign):
                targets = [child.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                        yield sub, cls
            yield from visit(child, cls)

    yield from visit(tree, None)


def _constructor_lines(name: str, tree: ast.Module) -> range:
    """The lines of the state's constructor, which gives every field its first value."""
    module, function = STATE_CONSTRUCTOR
    if name == module:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == function:
                return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return range(0)


def lifecycle_writes(name: str, tree: ast.Module) -> list[str]:
    """Rule 1: lifecycle fields assigned outside ``_lifecycle.py``."""
    if name == "_lifecycle.py":
        return []
    found: list[str] = []
    constructor = _constructor_lines(name, tree)
    for attr, cls in _assigned_attributes(tree):
        if attr.attr not in LIFECYCLE_FIELDS or attr.lineno in constructor:
            continue
        receiver = attr.value
        on_self = isinstance(receiver, ast.Name) and receiver.id == "self"
        # another class's own field of the same name (IdentityMap.modified) is fine;
        # the state record itself writes none of its lifecycle fields
        if on_self and cls != "InstanceState":
            continue
        found.append(f"{name}:{attr.lineno} assigns .{attr.attr}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr)
            in ("setattr", "__setattr__")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in LIFECYCLE_FIELDS
        ):
            found.append(f"{name}:{node.lineno} sets {node.args[1].value!r} with setattr")
    return found


#: what the transaction itself may send: its own BEGIN, where a driver has not sent it
TRANSACTION_STATEMENTS = frozenset({"BEGIN"})


def _transaction_control(name: str, call: ast.Call) -> bool:
    first = call.args[0] if call.args else None
    return (
        name == "_transaction.py"
        and isinstance(first, ast.Constant)
        and first.value in TRANSACTION_STATEMENTS
    )


def statement_executions(name: str, tree: ast.Module) -> list[str]:
    """Rule 2: statements executed outside ``_persistence.py`` and ``_loading.py``."""
    if name in ("_persistence.py", "_loading.py"):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            method = node.func.attr
            executes = method in EXECUTING_CALLS or (
                method in EXECUTING_WITH_STATEMENT and bool(node.args)
            )
            if (
                executes
                and not (isinstance(receiver, ast.Name) and receiver.id in DELEGATING_RECEIVERS)
                and not _transaction_control(name, node)
            ):
                found.append(f"{name}:{node.lineno} calls .{method}()")
    return found


def private_core_names(name: str, tree: ast.Module, own: frozenset[str]) -> list[str]:
    """Rule 3: private Core attributes, keywords or modules named outside ``_core.py``."""
    if name == "_core.py":
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attr = node.attr
            if (
                attr.startswith("_")
                and not attr.startswith("__")
                and attr not in own
                and attr not in PUBLIC_UNDERSCORE_NAMES
            ):
                found.append(f"{name}:{node.lineno} reads .{attr}")
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg is not None and keyword.arg.startswith("_"):
                    found.append(f"{name}:{node.lineno} passes {keyword.arg}=")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            module = node.module or ""
            if module in PRIVATE_CORE_MODULES or any(
                part.startswith("_") for part in module.split(".")
            ):
                found.append(f"{name}:{node.lineno} imports from {module}")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{name}:{node.lineno} imports {alias.name}")
    return found


def _typing_only_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (imports there are for annotations)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports_of_session(name: str, tree: ast.Module) -> list[str]:
    """Rule 4: ``_session.py`` imported by a module below it.

    Below the session, an import for annotations only (under ``TYPE_CHECKING``) is
    allowed (the event hooks name the session type their listeners receive), except in
    the modules that talk to the session through protocols, which may not name it at all.
    """
    if name in MODULES_ABOVE_THE_SESSION:
        return []
    typing_only = set() if name in NEVER_NAME_THE_SESSION else _typing_only_lines(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if module == "typed_session._session" or (
                module == "typed_session" and "_session" in names
            ):
                found.append(f"{name}:{node.lineno} imports typed_session._session")
        elif isinstance(node, ast.Import) and any(
            alias.name == "typed_session._session" for alias in node.names
        ):
            found.append(f"{name}:{node.lineno} imports typed_session._session")
    return found


MODULES = _modules()
OWN_PRIVATE = _own_private_names(MODULES)


def test_the_package_is_where_the_rules_look() -> None:
    assert {"_lifecycle.py", "_session.py", "_persistence.py", "_loading.py", "_core.py"} <= set(
        MODULES
    )


def test_only_lifecycle_assigns_lifecycle_fields() -> None:
    assert [v for n, t in MODULES.items() for v in lifecycle_writes(n, t)] == []


def test_only_persistence_and_loading_execute_statements() -> None:
    assert [v for n, t in MODULES.items() for v in statement_executions(n, t)] == []


def test_only_core_module_names_private_core_attributes() -> None:
    assert [v for n, t in MODULES.items() for v in private_core_names(n, t, OWN_PRIVATE)] == []


def test_nothing_below_the_session_imports_it() -> None:
    assert [v for n, t in MODULES.items() for v in imports_of_session(n, t)] == []


# -- each rule catches what it is for ----------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "def f(state):\n    state.identity = 1\n",
        "def f(state):\n    state.expired |= {'a'}\n",
        "def f(s):\n    s.obj_state.strong: object = None\n",
        "def f(state):\n    setattr(state, 'deleted', True)\n",
        "class InstanceState:\n    def go(self):\n        self.modified = True\n",
    ],
)
def test_rule_1_catches_a_lifecycle_write(source: str) -> None:
    assert lifecycle_writes("_persistence.py", ast.parse(source))
    assert not lifecycle_writes("_lifecycle.py", ast.parse(source))


def test_rule_1_allows_only_the_state_constructor() -> None:
    source = (
        "def new_instance_state(obj):\n    state.identity = None\n\n"
        "def other(state):\n    state.identity = 1\n"
    )
    assert lifecycle_writes("_state.py", ast.parse(source)) == ["_state.py:5 assigns .identity"]
    assert len(lifecycle_writes("_loading.py", ast.parse(source))) == 2


def test_rule_1_allows_other_classes_own_fields() -> None:
    source = "class Outcome:\n    def __init__(self):\n        self.deleted = []\n"
    assert not lifecycle_writes("_persistence.py", ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "def f(conn, stmt):\n    conn.execute(stmt)\n",
        "def f(self):\n    self.bind.connect().scalars(1)\n",
        "def f(conn):\n    conn.exec_driver_sql('select 1')\n",
    ],
)
def test_rule_2_catches_a_statement_outside_the_io_modules(source: str) -> None:
    assert statement_executions("_session.py", ast.parse(source))
    assert not statement_executions("_loading.py", ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "class S:\n    def scalars(self, s):\n        return self.execute(s).scalars()\n",
        "def f(conn, imap, stmt):\n    return loading.execute(conn, imap, stmt)\n",
        "def f(result):\n    return result.scalar()\n",
        "def f(self):\n    session = self._session\n    return session.scalars(self.stmt)\n",
    ],
)
def test_rule_2_allows_delegation_and_reading_results(source: str) -> None:
    assert not statement_executions("_session.py", ast.parse(source))


def test_rule_2_lets_the_transaction_send_only_its_begin() -> None:
    begin = "def f(driver):\n    driver.execute('BEGIN')\n"
    other = "def f(driver):\n    driver.execute('DELETE FROM t')\n"
    assert not statement_executions("_transaction.py", ast.parse(begin))
    assert statement_executions("_transaction.py", ast.parse(other))
    assert statement_executions("_session.py", ast.parse(begin))


@pytest.mark.parametrize(
    "source",
    [
        "def f(stmt):\n    return stmt._raw_columns\n",
        "def f(t):\n    return t._annotate({})\n",
        "def f(R, m):\n    return R(m, [], _source_supports_scalars=True)\n",
        "from sqlalchemy.engine.result import SimpleResultMetaData\n",
        "from sqlalchemy.util._collections import immutabledict\n",
        "from sqlalchemy.util.concurrency import greenlet_spawn\n",
        "from sqlalchemy.util import concurrency\n",
        "from sqlalchemy.sql.elements import _anonymous_label\n",
    ],
)
def test_rule_3_catches_a_private_core_name(source: str) -> None:
    assert private_core_names("_loading.py", ast.parse(source), OWN_PRIVATE)
    assert not private_core_names("_core.py", ast.parse(source), OWN_PRIVATE)


def test_rule_3_counts_no_core_name_as_our_own() -> None:
    assert not {"_annotate", "_annotations", "_raw_columns"} & OWN_PRIVATE


def test_rule_3_allows_our_own_private_names_and_rows_public_ones() -> None:
    source = "def f(session, row):\n    return session._objects, row._mapping\n"
    assert "_objects" in OWN_PRIVATE
    assert not private_core_names("_session.py", ast.parse(source), OWN_PRIVATE)


@pytest.mark.parametrize(
    "source",
    [
        "from typed_session._session import Session\n",
        "from typed_session import _session\n",
        "import typed_session._session\n",
    ],
)
def test_rule_4_catches_an_import_of_the_session(source: str) -> None:
    assert imports_of_session("_transaction.py", ast.parse(source))
    assert imports_of_session("_lifecycle.py", ast.parse(source))
    assert not imports_of_session("_session.py", ast.parse(source))


def test_rule_4_allows_annotations_below_except_where_protocols_are_the_way() -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from typed_session._session import Session\n"
    )
    assert not imports_of_session("_events.py", ast.parse(source))
    assert imports_of_session("_transaction.py", ast.parse(source))
    assert imports_of_session("_state.py", ast.parse(source))
