"""A model check of the session's transactions (issue 14, item 8).

A Hypothesis state machine drives random sequences of ``add`` (new objects, transient
ones added again, expunged ones attached again), ``modify``, ``delete``, ``expunge``,
``flush``, ``commit``, ``rollback``, ``begin_nested``, the rollback and release of a
SAVEPOINT (the innermost or one further out), ``expire``, ``expire_all``, loading expired
attributes (with and without autoflush), ``get``, and flushes that fail, against a plain
model (``Model``) of:

* the committed rows (what another connection sees),
* the rows the session's transaction sees, with one snapshot per transaction level (the
  root and each open SAVEPOINT) and what each level inserted, updated and deleted,
* per Python object: its lifecycle state, the attributes it has expired, whether it has
  unflushed changes or is marked for deletion, and the value it must show when read.

After every step it checks that the database and the session agree with the model: the
committed rows read through a separate connection, the transaction's rows read through
``session.execute(select(...))`` (plain columns, no autoflush, so that the check changes
nothing the model predicts), and per object ``instance_state(obj).object_state``, its
expired attributes and the values it holds (expired values are loaded only by the steps
that load, whose result is checked there), ``session.new`` / ``deleted`` / ``dirty``, and
after a failed flush, that the session refuses work with ``PendingRollbackError``.

Three ways a flush fails are modelled:

* database errors (they work on every backend and need no second connection): a new
  object whose unique ``tag`` another row has, or whose primary key is that of a row whose
  object was expunged. The innermost level (the SAVEPOINT, else the transaction) rolls
  back at once and refuses work until it is rolled back;
* a ``FlushError`` before any SQL: a new object with the key of an object the session
  already has (pending, or persistent and not being deleted); the session stays usable
  and the test expunges the new object.

It runs on every backend the ``engine`` fixture provides (SQLite always; PostgreSQL and
MariaDB when reachable, and they must be with ``CI=true``). The size of the run is a
setting::

    TYPED_SESSION_MODEL_EXAMPLES   sequences per backend (default 15)
    TYPED_SESSION_MODEL_STEPS      steps per sequence (default 40)

A long run (the figures of the issue's note)::

    export TYPED_SESSION_MODEL_EXAMPLES=2000 TYPED_SESSION_MODEL_STEPS=60
    .venv/bin/python -m pytest tests/integration/test_session_model.py

(``scripts/check.sh`` sets the PostgreSQL and MariaDB URLs; run it through
``bash scripts/check.sh tests/integration/test_session_model.py`` with the variables above
to include them.) The integration tests hold a machine-wide lock while they run, so a long
run makes other test runs on the machine wait.

The last long run (this module as committed with this note; Hypothesis with a fixed seed,
``derandomize=True``, 60 steps a sequence at most) passed 3000 sequences on SQLite and
1000 each on PostgreSQL 127.0.0.1:5432 and MariaDB 127.0.0.1:3306; a random run through
the command above, before expunge was modelled, passed 1500 sequences on SQLite.

Library bugs the machine finds are kept out of it by commented preconditions, each with a
test at the end of this module that reproduces it. The one it found (an object changed,
then deleted inside a SAVEPOINT, kept its changed value when the SAVEPOINT rolled back)
is fixed and its test passes; the machine still avoids that sequence for now: with the
preconditions removed, runs of a few hundred sequences report inconsistent data
generation, which is to be looked into before they go.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, String, delete, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError

from tests.integration.helpers import recreate_tables, table_of
from typed_session import (
    FlushError,
    Mapped,
    ObjectState,
    Registry,
    Session,
    SessionTransaction,
    column,
    entity,
    instance_state,
)

reg = Registry()


@entity(reg, table="model_items")
class Item:
    id: Mapped[int] = column(primary_key=True, autoincrement=False)
    value: Mapped[int]
    tag: Mapped[str] = column(String(20), unique=True)


EXAMPLES = int(os.environ.get("TYPED_SESSION_MODEL_EXAMPLES", "15"))
STEPS = int(os.environ.get("TYPED_SESSION_MODEL_STEPS", "40"))

#: primary keys the sequences use: few, so that objects meet on them
KEYS = 5
#: objects a sequence creates at most (transient ones are added again instead)
MAX_OBJECTS = 10
#: SAVEPOINTs open at once at most
MAX_NESTED = 3
#: keys of the objects made to fail a flush: never those of KEYS
CLASH_KEYS = itertools.count(1000)

ALL = frozenset({"id", "value", "tag"})
P = ObjectState.PERSISTENT

Row = tuple[int, str]  # (value, tag) by id


def tag_of(key: int) -> str:
    return f"t{key}"


@dataclass(eq=False)
class Tracked:
    """What the model expects of one Python object."""

    obj: Item
    key: int
    state: ObjectState
    value: int
    """Its own value of ``value`` (meaningful while ``value`` is not expired)."""
    expired: frozenset[str] = frozenset()
    modified: bool = False
    """Assigned while it had an identity, not flushed since."""
    marked: bool = False
    """``session.delete()``d, not flushed yet."""
    expunged: bool = False
    """Detached by ``session.expunge()`` (not by the commit of its DELETE)."""


@dataclass(eq=False)
class Level:
    """One transaction level: the root (``tx`` None) or a SAVEPOINT."""

    tx: SessionTransaction | None
    snapshot: dict[int, Row]
    """The rows the transaction saw when the level began."""
    inserted: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)
    """Objects with an UPDATE flushed in the level, or changed when their DELETE was."""
    failed: bool = False


@dataclass
class Model:
    """The committed rows, the transaction's rows per level, and every object."""

    committed: dict[int, Row] = field(default_factory=dict)
    view: dict[int, Row] = field(default_factory=dict)
    levels: list[Level] = field(default_factory=list)
    objects: list[Tracked] = field(default_factory=list)

    # -- questions ---------------------------------------------------------------------

    @property
    def in_tx(self) -> bool:
        return bool(self.levels)

    @property
    def failed(self) -> bool:
        return bool(self.levels) and self.levels[-1].failed

    @property
    def nested_depth(self) -> int:
        return max(len(self.levels) - 1, 0)

    def has_changes(self) -> bool:
        return any(
            t.state is ObjectState.PENDING or (t.state is P and (t.modified or t.marked))
            for t in self.objects
        )

    def holder(self, key: int) -> Tracked | None:
        """The pending or persistent object with ``key`` (one at most, but a row switch)."""
        found = [t for t in self.objects if t.key == key and t.state in (P, ObjectState.PENDING)]
        found.sort(key=lambda t: t.state is not ObjectState.PENDING)  # the pending one first
        return found[0] if found else None

    def orphans(self) -> set[int]:
        """Keys of rows the transaction sees whose object was expunged."""
        return set(self.view) - {t.key for t in self.objects if t.state is P}

    def addable(self, key: int) -> bool:
        """Whether a new object with ``key`` can be added and flushed without a conflict."""
        if key in self.orphans():
            return False  # the INSERT would fail in the database
        for t in self.objects:
            if t.key != key:
                continue
            if t.state is ObjectState.PENDING or (t.state is P and not t.marked):
                return False
        return True

    def conflicting(self, key: int) -> bool:
        """Whether a new object with ``key`` is refused by the flush before any SQL."""
        return any(
            t.key == key and (t.state is ObjectState.PENDING or (t.state is P and not t.marked))
            for t in self.objects
        )

    # -- transitions -------------------------------------------------------------------

    def autobegin(self) -> None:
        if not self.levels:
            self.levels.append(Level(None, dict(self.committed)))

    def load(self, t: Tracked) -> None:
        """Every expired attribute of a persistent object is read from the transaction."""
        assert t.state is P
        assert t.key in self.view
        if "value" in t.expired:
            t.value = self.view[t.key][0]
        t.expired = frozenset()
        self.autobegin()

    def expire(self, t: Tracked) -> None:
        t.expired = ALL
        t.modified = False

    def load_keys_for_flush(self) -> None:
        """A flush first loads objects to update or delete whose key is expired."""
        for t in self.objects:
            if t.state is P and (t.marked or t.modified) and "id" in t.expired:
                self.load(t)

    def flush(self) -> None:
        if not self.has_changes():
            return
        assert not self.failed
        self.load_keys_for_flush()
        level = self.levels[-1]
        for i, t in enumerate(self.objects):
            if t.state is P and t.marked:
                del self.view[t.key]
                t.state = ObjectState.DELETED
                t.marked = False
                if t.modified:  # the change goes with the row, but it was a change
                    level.changed.add(i)
                t.modified = False
                level.deleted.add(i)
        for i, t in enumerate(self.objects):
            if t.state is ObjectState.PENDING:
                assert t.key not in self.view
                self.view[t.key] = (t.value, tag_of(t.key))
                t.state = P
                level.inserted.add(i)
            elif t.state is P and t.modified:
                self.view[t.key] = (t.value, tag_of(t.key))
                t.modified = False
                level.changed.add(i)

    def restore(self, level: Level, *, nested: bool) -> None:
        """A level rolls back: its rows, and the objects as they were when it began."""
        self.view = dict(level.snapshot)
        for i, t in enumerate(self.objects):
            if i in level.inserted or t.state is ObjectState.PENDING:
                t.state = ObjectState.TRANSIENT
                t.modified = t.marked = t.expunged = False
            elif i in level.deleted and t.state is ObjectState.DELETED:
                t.state = P
            t.marked = False
        for i, t in enumerate(self.objects):
            if t.state is P and (not nested or t.modified or i in level.changed):
                self.expire(t)

    def rollback_levels_from(self, index: int) -> None:
        """Roll back the levels from ``index`` inwards, the innermost first."""
        while len(self.levels) > index:
            level = self.levels.pop()
            if not level.failed:  # a failed level was restored when it failed
                self.restore(level, nested=level.tx is not None)

    def release_levels_from(self, index: int) -> None:
        assert index >= 1
        self.flush()
        while len(self.levels) > index:
            level = self.levels.pop()
            parent = self.levels[-1]
            parent.inserted |= level.inserted
            parent.deleted |= level.deleted
            parent.changed |= level.changed

    def commit(self) -> None:
        self.autobegin()
        self.flush()
        self.committed = dict(self.view)
        for t in self.objects:
            if t.state is ObjectState.DELETED:
                t.state = ObjectState.DETACHED
            elif t.state is P:
                self.expire(t)
        self.levels.clear()

    def fail_flush(self) -> None:
        """The innermost level's flush failed in the database."""
        self.load_keys_for_flush()
        level = self.levels[-1]
        self.restore(level, nested=level.tx is not None)
        level.failed = True


class SessionModelMachine(RuleBasedStateMachine):
    """Drives one session and the model side by side; ``engine`` is set by the test."""

    engine: ClassVar[Engine]

    def __init__(self) -> None:
        super().__init__()
        with self.engine.begin() as conn:
            conn.execute(delete(table_of(Item)))
        self.session: Session[Engine] = Session(self.engine)
        self.model = Model()
        self.values = itertools.count(1)
        #: every object a step made or was handed, held so that the weak identity map
        #: never depends on when the garbage collector runs (a failure replays alike)
        self.kept: list[object] = []

    def teardown(self) -> None:
        self.session.close()

    # -- helpers -----------------------------------------------------------------------

    def in_state(self, *states: ObjectState) -> list[Tracked]:
        return [t for t in self.model.objects if t.state in states]

    def track(self, obj: Item, key: int, value: int) -> Tracked:
        t = Tracked(obj, key, ObjectState.PENDING, value)
        self.model.objects.append(t)
        return t

    def committed_rows(self) -> dict[int, Row]:
        items = table_of(Item)
        with self.engine.connect() as conn:
            rows = conn.execute(select(items.c.id, items.c.value, items.c.tag)).all()
        return {i: (v, t) for i, v, t in rows}

    def session_rows(self) -> dict[int, Row]:
        with self.session.no_autoflush:
            rows = self.session.execute(select(Item.id, Item.value, Item.tag)).all()
        return {i: (v, t) for i, v, t in rows}

    # -- adding --------------------------------------------------------------------------

    @initialize(keys=st.sets(st.integers(0, KEYS - 1), max_size=KEYS))
    def start_with_committed_rows(self, keys: set[int]) -> None:
        for key in sorted(keys):
            value = next(self.values)
            obj = Item(id=key, value=value, tag=tag_of(key))
            self.session.add(obj)
            self.track(obj, key, value)
        self.session.commit()
        self.model.commit()

    def free_keys(self) -> list[int]:
        if self.model.failed or len(self.model.objects) >= MAX_OBJECTS:
            return []
        return [k for k in range(KEYS) if self.model.addable(k)]

    @precondition(lambda self: self.free_keys())
    @rule(data=st.data())
    def add_new(self, data: st.DataObject) -> None:
        free = self.free_keys()
        key = data.draw(st.sampled_from(free), label="key")
        value = next(self.values)
        obj = Item(id=key, value=value, tag=tag_of(key))
        self.session.add(obj)
        self.track(obj, key, value)
        self.model.autobegin()

    def addable_transients(self) -> list[Tracked]:
        # an object whose attributes were expired before it became transient has no
        # values left to insert: only those with all their values are added again
        if self.model.failed:
            return []
        return [
            t
            for t in self.in_state(ObjectState.TRANSIENT)
            if not t.expired and self.model.addable(t.key)
        ]

    @precondition(lambda self: self.addable_transients())
    @rule(data=st.data())
    def add_transient_again(self, data: st.DataObject) -> None:
        candidates = self.addable_transients()
        t = data.draw(st.sampled_from(candidates), label="transient")
        self.session.add(t.obj)
        t.state = ObjectState.PENDING
        t.expunged = False
        self.model.autobegin()

    def attachable(self) -> list[Tracked]:
        if self.model.failed:
            return []
        orphans = self.model.orphans()
        return [t for t in self.in_state(ObjectState.DETACHED) if t.expunged and t.key in orphans]

    @precondition(lambda self: self.attachable())
    @rule(data=st.data())
    def add_detached_again(self, data: st.DataObject) -> None:
        t = data.draw(st.sampled_from(self.attachable()), label="detached")
        self.session.add(t.obj)
        t.state = P
        t.expunged = False
        self.model.autobegin()

    def expungeable(self) -> list[Tracked]:
        if self.model.failed:
            return []
        return [t for t in self.in_state(P) if not t.marked and not t.modified]

    @precondition(lambda self: self.expungeable())
    @rule(data=st.data())
    def expunge(self, data: st.DataObject) -> None:
        t = data.draw(st.sampled_from(self.expungeable()), label="expunged")
        self.session.expunge(t.obj)
        t.state = ObjectState.DETACHED
        t.expunged = True

    # -- changing ------------------------------------------------------------------------

    def modifiable(self) -> list[Tracked]:
        if self.model.failed:
            return []
        candidates = self.in_state(P, ObjectState.PENDING)
        if self.model.nested_depth:
            # a library bug, fixed (see the last test of this module), still kept out of
            # the machine: an object changed and then deleted, whose DELETE is flushed
            # inside a SAVEPOINT, was not expired when the SAVEPOINT rolled back
            candidates = [t for t in candidates if not t.marked]
        return candidates

    @precondition(lambda self: self.modifiable())
    @rule(data=st.data())
    def modify(self, data: st.DataObject) -> None:
        candidates = self.modifiable()
        t = data.draw(st.sampled_from(candidates), label="changed")
        value = next(self.values)  # always a new value: every change is a real one
        t.obj.value = value
        t.value = value
        t.expired -= {"value"}
        if t.state is P:
            t.modified = True
            self.model.autobegin()

    def deletable(self) -> list[Tracked]:
        if self.model.failed:
            return []
        candidates = [t for t in self.in_state(P) if not t.marked]
        if self.model.nested_depth:
            # the same library bug from the other side: no deleting a changed object
            candidates = [t for t in candidates if not t.modified]
        return candidates

    @precondition(lambda self: self.deletable())
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        candidates = self.deletable()
        t = data.draw(st.sampled_from(candidates), label="deleted")
        self.session.delete(t.obj)
        t.marked = True
        self.model.autobegin()

    @precondition(lambda self: not self.model.failed and self.in_state(P))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        candidates = self.in_state(P)
        t = data.draw(st.sampled_from(candidates), label="expired")
        self.session.expire(t.obj)
        self.model.expire(t)

    @precondition(lambda self: not self.model.failed and self.in_state(P))
    @rule()
    def expire_all(self) -> None:
        self.session.expire_all()
        for t in self.in_state(P):
            self.model.expire(t)

    # -- reading -------------------------------------------------------------------------

    def loadable(self, *, autoflush: bool) -> list[Tracked]:
        if self.model.failed:
            return []
        return [t for t in self.in_state(P) if t.expired and not (autoflush and t.marked)]

    @precondition(lambda self: self.loadable(autoflush=False))
    @rule(data=st.data(), autoflush=st.booleans())
    def load(self, data: st.DataObject, autoflush: bool) -> None:
        candidates = self.loadable(autoflush=autoflush)
        if not candidates:
            return
        t = data.draw(st.sampled_from(candidates), label="loaded")
        name = sorted(t.expired)[0]
        if autoflush:
            got = getattr(t.obj, name)
            self.model.flush()
        else:
            with self.session.no_autoflush:
                got = getattr(t.obj, name)
        if t.expired:
            self.model.load(t)
        expected = {"id": t.key, "value": t.value, "tag": tag_of(t.key)}[name]
        assert got == expected, f"{name} of {t.obj!r} read {got!r}, the model says {expected!r}"

    def gettable(self) -> list[int]:
        # the row of an expunged object would load as a new object: not modelled
        orphans = self.model.orphans()
        if self.model.failed:
            return []
        return [k for k in range(KEYS) if k not in orphans]

    @precondition(lambda self: self.model.objects and self.gettable())
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(self.gettable()), label="get key")
        model = self.model
        got = self.session.get(Item, key)
        self.kept.append(got)
        mapped = [t for t in model.objects if t.key == key and t.state is P]
        expected: Tracked | None
        if mapped and mapped[0].expired != ALL:
            expected = mapped[0]  # from the identity map, without SQL (nor autoflush)
        else:
            model.autobegin()
            model.flush()  # get() autoflushes before its SELECT
            mapped = [t for t in model.objects if t.key == key and t.state is P]
            expected = mapped[0] if mapped else None
            if expected is not None and expected.expired:
                model.load(expected)
        assert got is (None if expected is None else expected.obj), (key, got, expected)

    # -- flushing and transactions -------------------------------------------------------

    @precondition(lambda self: not self.model.failed and self.model.has_changes())
    @rule()
    def flush(self) -> None:
        self.session.flush()
        self.model.flush()

    @precondition(lambda self: not self.model.failed and self.model.in_tx)
    @rule()
    def commit(self) -> None:
        self.session.commit()
        self.model.commit()

    @precondition(lambda self: self.model.in_tx)
    @rule()
    def rollback(self) -> None:
        self.session.rollback()
        self.model.rollback_levels_from(0)

    @precondition(lambda self: not self.model.failed and self.model.nested_depth < MAX_NESTED)
    @rule()
    def begin_nested(self) -> None:
        self.model.autobegin()
        self.model.flush()
        tx = self.session.begin_nested()
        self.model.levels.append(Level(tx, dict(self.model.view)))

    @precondition(lambda self: self.model.nested_depth > 0)
    @rule(data=st.data())
    def rollback_nested(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(1, len(self.model.levels) - 1), label="level")
        tx = self.model.levels[index].tx
        assert tx is not None
        tx.rollback()
        self.model.rollback_levels_from(index)

    @precondition(lambda self: not self.model.failed and self.model.nested_depth > 0)
    @rule(data=st.data())
    def release_nested(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(1, len(self.model.levels) - 1), label="level")
        tx = self.model.levels[index].tx
        assert tx is not None
        tx.commit()
        self.model.release_levels_from(index)

    # -- failing flushes -----------------------------------------------------------------

    def clashing_tags(self) -> list[int]:
        """Keys of rows the transaction sees and the next flush will not delete first."""
        model = self.model
        if model.failed:
            return []
        marked = {t.key for t in model.objects if t.state is P and t.marked}
        return sorted(k for k in model.view if k not in marked)

    @precondition(lambda self: self.clashing_tags())
    @rule(data=st.data())
    def flush_a_unique_clash(self, data: st.DataObject) -> None:
        model = self.model
        taken = self.clashing_tags()
        key = data.draw(st.sampled_from(taken), label="clash with")
        clash = Item(id=next(CLASH_KEYS), value=0, tag=tag_of(key))
        self.kept.append(clash)
        self.session.add(clash)
        model.autobegin()
        with pytest.raises(IntegrityError):
            self.session.flush()
        model.fail_flush()
        assert instance_state(clash).object_state is ObjectState.TRANSIENT

    def conflicting_keys(self) -> list[int]:
        if self.model.failed:
            return []
        return [k for k in range(KEYS) if self.model.conflicting(k)]

    @precondition(lambda self: self.conflicting_keys())
    @rule(data=st.data())
    def flush_a_key_conflict(self, data: st.DataObject) -> None:
        model = self.model
        keys = self.conflicting_keys()
        key = data.draw(st.sampled_from(keys), label="conflict on")
        holder = model.holder(key)
        assert holder is not None
        clash = Item(id=key, value=0, tag=tag_of(key))
        self.kept.append(clash)
        self.session.add(clash)
        model.autobegin()
        with pytest.raises(FlushError):
            self.session.flush()
        # refused before any SQL; what the flush loaded first stays loaded
        model.load_keys_for_flush()
        if holder.state is P and holder.expired == ALL:
            model.load(holder)  # its row is checked before the conflict is reported
        self.session.expunge(clash)
        assert instance_state(clash).object_state is ObjectState.TRANSIENT

    def orphan_keys(self) -> list[int]:
        return [] if self.model.failed else sorted(self.model.orphans())

    @precondition(lambda self: self.orphan_keys())
    @rule(data=st.data())
    def flush_a_primary_key_clash(self, data: st.DataObject) -> None:
        model = self.model
        key = data.draw(st.sampled_from(self.orphan_keys()), label="key of an expunged row")
        # no object in the session has the key: the database refuses the INSERT
        clash = Item(id=key, value=0, tag=f"x{next(CLASH_KEYS)}")
        self.kept.append(clash)
        self.session.add(clash)
        model.autobegin()
        with pytest.raises(IntegrityError):
            self.session.flush()
        model.fail_flush()
        assert instance_state(clash).object_state is ObjectState.TRANSIENT

    # -- what must hold after every step ---------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        model = self.model
        assert self.committed_rows() == model.committed
        if model.in_tx and not model.failed:
            assert self.session_rows() == model.view

    @invariant()
    def transaction_agrees(self) -> None:
        model, session = self.model, self.session
        assert session.in_transaction() == model.in_tx
        assert session.in_nested_transaction() == (model.nested_depth > 0)
        assert session.is_active == (not model.failed)
        if model.failed:
            with pytest.raises(PendingRollbackError):
                session.execute(select(Item.id))
            with pytest.raises(PendingRollbackError):
                session.commit()
            with pytest.raises(PendingRollbackError):
                session.begin_nested()

    @invariant()
    def objects_agree(self) -> None:
        model, session = self.model, self.session
        for t in model.objects:
            state = instance_state(t.obj)
            assert state.object_state is t.state, (t.obj, t.state, state.object_state)
            assert (state.expired or frozenset()) == t.expired, (t.obj, t.expired, state.expired)
            if t.state is P:
                assert t.key in model.view, t
            # only values that are loaded: reading them sends no SQL
            if "value" not in t.expired:
                assert t.obj.value == t.value, (t.obj, t.value)
            if "id" not in t.expired:
                assert t.obj.id == t.key
            if "tag" not in t.expired:
                assert t.obj.tag == tag_of(t.key)
        assert {id(o) for o in session.new} == {
            id(t.obj) for t in model.objects if t.state is ObjectState.PENDING
        }
        assert {id(o) for o in session.deleted} == {
            id(t.obj) for t in model.objects if t.state is P and t.marked
        }
        assert {id(o) for o in session.dirty} == {
            id(t.obj) for t in model.objects if t.state is P and t.modified and not t.marked
        }
        # every row the transaction sees belongs to one persistent or expunged object
        holders = sorted(
            t.key
            for t in model.objects
            if t.state is P or (t.state is ObjectState.DETACHED and t.expunged)
        )
        assert holders == sorted(model.view)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def test_the_session_agrees_with_the_model(engine: Engine) -> None:
    class Machine(SessionModelMachine):
        pass

    Machine.engine = engine
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            # the same sequences every run (a failure reproduces), and no example database
            # to replay sequences of an older version of this machine
            derandomize=True,
            database=None,
        ),
    )


# -- library bugs the machine found (kept out of it by preconditions) -----------------------


def test_changed_then_deleted_in_a_savepoint_is_reloaded_when_it_rolls_back(
    engine: Engine,
) -> None:
    """Found by the machine: the object kept its changed value after the rollback."""
    with Session(engine) as session:
        item = Item(id=1, value=1, tag="t1")
        session.add(item)
        session.commit()
        savepoint = session.begin_nested()
        item.value = 2
        session.delete(item)
        session.flush()

        savepoint.rollback()

        assert instance_state(item).object_state is ObjectState.PERSISTENT
        # the SAVEPOINT is undone: the object shows the row's value, 1 (it showed 2,
        # unexpired and unmodified, so nothing ever wrote or reloaded it)
        assert item.value == 1
