"""The per-object record's layout (issue 17, item 1): what a loaded row leaves alive.

The state is the weak reference to its object and is kept in the object's ``__dict__``:
three objects per loaded row for the cyclic collector (the object, its dict, its state)
instead of four, and a state lives exactly as long as its object.
"""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from typed_session import (
    InstanceState,
    Mapped,
    Registry,
    Session,
    column,
    entity,
    instance_state,
    relationship,
)
from typed_session._state import STATE_ATTR, state_of

reg = Registry()


@entity(reg, table="sl_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    qty: Mapped[int] = column(default=0)


@entity(reg, table="sl_parents")
class Holder:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    kids: Mapped[list[Kid]] = relationship(default_factory=list, back_populates="holder")


@entity(reg, table="sl_kids")
class Kid:
    id: Mapped[int] = column(primary_key=True, init=False)
    holder_id: Mapped[int | None] = column(foreign_key="sl_parents.id", default=None)
    holder: Mapped[Holder | None] = relationship(default=None, back_populates="kids")


@pytest.fixture
def engine(memory_engine: Engine) -> Engine:
    reg.create_all(memory_engine)
    with Session(memory_engine) as s:
        s.add_all([Item(name=f"i{n}", qty=n) for n in range(2000)])
        s.commit()
    return memory_engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session[Engine]]:
    with Session(engine) as s:
        yield s


def test_a_loaded_objects_dict_holds_its_columns_and_its_state(
    session: Session[Engine],
) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    assert set(item.__dict__) == {"id", "name", "qty", STATE_ATTR}
    assert instance_state(item) is item.__dict__[STATE_ATTR] is state_of(item)
    assert instance_state(item).obj() is item
    assert instance_state(item)() is item


def test_three_tracked_objects_per_loaded_row(session: Session[Engine]) -> None:
    session.scalars(select(Item)).all()  # warm: compiled statement, caches
    session.expunge_all()
    gc.collect()
    before = len(gc.get_objects())
    items = session.scalars(select(Item)).all()
    per_row = (len(gc.get_objects()) - before) / len(items)
    assert len(items) == 2000
    assert per_row < 3.1, per_row  # the object, its dict, its state (no separate weakref)


def test_the_state_is_hashed_by_identity_not_by_its_object() -> None:
    a, b = Item(name="a"), Item(name="a")
    sa, sb = instance_state(a), instance_state(b)
    assert sa != sb
    assert len({sa, sb}) == 2
    assert sa == sa


def _live_states() -> int:
    gc.collect()
    return sum(isinstance(o, InstanceState) for o in gc.get_objects())


def test_a_state_lives_as_long_as_its_object() -> None:
    before = _live_states()
    for _ in range(5):
        batch = [Item(name="x") for _ in range(500)]
        for obj in batch:
            instance_state(obj)
        del batch, obj
    assert _live_states() == before


def test_a_copy_does_not_share_the_originals_state(session: Session[Engine]) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    twin = copy.copy(item)
    assert instance_state(twin) is not instance_state(item)
    assert instance_state(twin).transient
    assert instance_state(item).persistent


def test_a_loaded_object_pickles_with_its_values_only(session: Session[Engine]) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    back: Any = pickle.loads(pickle.dumps(item))
    assert (back.id, back.name, back.qty) == (item.id, item.name, item.qty)
    assert state_of(back) is None
    back.qty = 41
    merged = session.merge(back)  # the documented way back into a session
    assert merged is item
    assert item.qty == 41


def test_a_dropped_session_lets_its_modified_objects_go(engine: Engine) -> None:
    session = Session(engine)
    item = session.scalars(select(Item).limit(1)).one()
    item.qty = 99  # modified: the session holds it strongly until it is flushed
    ref = weakref.ref(item)
    del item, session
    gc.collect()
    assert ref() is None


def test_threads_making_and_dropping_objects_leave_no_state_behind(
    tmp_path: Path,
) -> None:
    # a file: an in-memory SQLite database is one per thread
    engine = create_engine(f"sqlite:///{tmp_path / 'threads.db'}")
    reg.create_all(engine)
    with Session(engine) as seed:
        seed.add_all([Item(name=f"i{n}") for n in range(200)])
        seed.commit()
    before = _live_states()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                with Session(engine) as session:
                    items = session.scalars(select(Item).limit(200)).all()
                    for item in items:
                        assert instance_state(item)() is item
                    fresh = [Item(name="t") for _ in range(50)]
                    assert all(state_of(f) is None for f in fresh)
                    assert all(instance_state(f)() is f for f in fresh)
                del items, fresh
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _live_states() == before


def test_an_exit_handler_still_finds_a_live_sessions_changes(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = f"""
import atexit
holder = {{}}
# registered before anything else: exit handlers run last-registered first, so this one
# runs after any that the imports below register (weakref.finalize's among them)
atexit.register(lambda: holder["session"].commit())
from sqlalchemy import create_engine, select
from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()

@entity(reg, table="items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]

engine = create_engine("sqlite:///{tmp_path / "exit.db"}")
reg.create_all(engine)
with Session(engine) as seed:
    seed.add(Item(name="before"))
    seed.commit()
session = holder["session"] = Session(engine)
item = session.scalars(select(Item)).one()
item.name = "after"  # only the exit handler commits it
del item
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    check = create_engine(f"sqlite:///{tmp_path / 'exit.db'}")
    with check.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM items").scalar() == "after"


def test_unflushed_relationship_changes_do_not_keep_objects_alive(engine: Engine) -> None:
    with Session(engine) as seed:
        seed.add(Holder(name="h"))
        seed.commit()
    refs: list[weakref.ref[Any]] = []
    for _ in range(20):
        try:
            with Session(engine) as session:
                found = session.scalars(select(Holder)).one()
                found.kids.append(Kid())  # history kept, never flushed
                refs.append(weakref.ref(found))
                del found
                raise RuntimeError("the request fails")
        except RuntimeError:
            pass
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_a_modified_object_referring_to_its_session_does_not_keep_both_alive(
    engine: Engine,
) -> None:
    session = Session(engine)
    item = session.scalars(select(Item).limit(1)).one()
    item.qty = 7
    item.audit_session = session  # type: ignore[attr-defined]
    refs = (weakref.ref(item), weakref.ref(session))
    del item, session
    gc.collect()
    assert refs[0]() is None
    assert refs[1]() is None
