"""The per-object record's layout (issue 17, item 1): what a loaded row leaves alive.

The state is the weak reference to its object and is found by the object's ``id()``, so
the object's ``__dict__`` holds column values only and the cyclic collector tracks two
objects per loaded row (the object and its state) instead of four.
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

from typed_session import Mapped, Registry, Session, column, entity, instance_state
from typed_session._state import state_of, states_by_id

reg = Registry()


@entity(reg, table="sl_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    qty: Mapped[int] = column(default=0)


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


def test_a_loaded_objects_dict_holds_only_its_columns(session: Session[Engine]) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    assert set(item.__dict__) == {"id", "name", "qty"}
    assert not gc.is_tracked(item.__dict__)
    assert instance_state(item).obj() is item
    assert instance_state(item)() is item


def test_two_tracked_objects_per_loaded_row(session: Session[Engine]) -> None:
    session.scalars(select(Item)).all()  # warm: compiled statement, caches
    session.expunge_all()
    gc.collect()
    before = len(gc.get_objects())
    items = session.scalars(select(Item)).all()
    per_row = (len(gc.get_objects()) - before) / len(items)
    assert len(items) == 2000
    assert per_row < 2.1, per_row


def test_the_state_is_hashed_by_identity_not_by_its_object() -> None:
    a, b = Item(name="a"), Item(name="a")
    sa, sb = instance_state(a), instance_state(b)
    assert sa != sb
    assert len({sa, sb}) == 2
    del a
    gc.collect()
    assert sa() is None
    assert sa == sa  # a dead reference still equals itself


def test_an_objects_entry_leaves_when_it_dies() -> None:
    gone = Item(name="gone")
    state = instance_state(gone)
    key = id(gone)
    assert states_by_id[key] is state
    del gone
    assert key not in states_by_id  # before the address can be reused
    assert state() is None


def test_an_object_in_a_garbage_cycle_leaves_its_entry_too() -> None:
    a, b = Item(name="a"), Item(name="b")
    a.other = b  # type: ignore[attr-defined]
    b.other = a  # type: ignore[attr-defined]
    keys = {id(a), id(b)}
    instance_state(a)
    instance_state(b)
    del a, b
    gc.collect()
    assert not keys & set(states_by_id)


def test_entries_do_not_accumulate() -> None:
    gc.collect()
    before = len(states_by_id)
    for _ in range(5):
        batch = [Item(name="x") for _ in range(2000)]
        for obj in batch:
            instance_state(obj)
        del batch, obj
    assert len(states_by_id) == before


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
    state = instance_state(item)
    del item, session
    gc.collect()
    assert ref() is None
    assert state.strong is None


def test_threads_making_and_dropping_objects_leave_the_registry_as_it_was(
    tmp_path: Path,
) -> None:
    # a file: an in-memory SQLite database is one per thread
    engine = create_engine(f"sqlite:///{tmp_path / 'threads.db'}")
    reg.create_all(engine)
    with Session(engine) as seed:
        seed.add_all([Item(name=f"i{n}") for n in range(200)])
        seed.commit()
    gc.collect()
    before = len(states_by_id)
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
    gc.collect()
    assert errors == []
    assert len(states_by_id) == before


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
