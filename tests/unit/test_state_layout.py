"""The per-object record's layout (issue 17, item 1): what a loaded row leaves alive.

A loaded object that nothing has asked about holds no state: the identity map holds it
by a bare weak reference, and its ``__dict__`` holds the map's mark (an int) where the
state would be, so the dict holds atomic values only and the collector does not track
it: two tracked objects per loaded row (the object, its reference). Its state is made the
first time anything asks (a write, ``instance_state()``, an expiry), from the map while
the map still holds the object, else detached. A state, once made, is the weak reference
to its object and is kept in the object's ``__dict__``: it lives exactly as long as the
object does.
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
from sqlalchemy import Engine, create_engine, delete, select, update
from sqlalchemy.exc import InvalidRequestError, SAWarning

from typed_session import (
    IdentityKey,
    InstanceState,
    Mapped,
    Registry,
    Session,
    column,
    entity,
    instance_state,
    object_session,
    relationship,
)
from typed_session._state import STATE_ATTR, state_of

reg = Registry()


@entity(reg, table="sl_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    qty: Mapped[int] = column(default=0)


@entity(reg, table="sl_tags")
class Tag:
    name: Mapped[str] = column(primary_key=True)
    value: Mapped[int]


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


def _held(obj: object) -> object:
    """What an object's dict holds where its state goes: the state, or the map's mark."""
    return obj.__dict__[STATE_ATTR]


def test_a_loaded_object_holds_its_maps_mark_until_its_state_is_asked_for(
    session: Session[Engine],
) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    assert set(item.__dict__) == {"id", "name", "qty", STATE_ATTR}
    assert type(_held(item)) is int
    assert not gc.is_tracked(item.__dict__)  # atomic values only
    state = instance_state(item)
    assert _held(item) is state is state_of(item) is instance_state(item)
    assert state.persistent
    assert state.session is session
    assert state.key == IdentityKey(Item, (item.id,))
    assert state.obj() is item
    assert state() is item


def test_two_tracked_objects_per_loaded_row(session: Session[Engine]) -> None:
    session.scalars(select(Item)).all()  # warm: compiled statement, caches
    session.expunge_all()
    gc.collect()
    before = len(gc.get_objects())
    items = session.scalars(select(Item)).all()
    per_row = (len(gc.get_objects()) - before) / len(items)
    assert len(items) == 2000
    assert per_row < 2.1, per_row  # the object and its weak reference: no state, no dict


def test_a_write_to_a_loaded_object_makes_its_state_and_is_flushed(
    session: Session[Engine],
) -> None:
    item, other = session.scalars(select(Item).order_by(Item.id).limit(2)).all()
    item.qty = 1234
    assert isinstance(_held(item), InstanceState)
    assert type(_held(other)) is int  # untouched: still no state
    assert item in session.dirty
    assert instance_state(item).committed == {"qty": 0}
    session.flush()
    session.expire_all()
    assert session.scalars(select(Item.qty).where(Item.id == item.id)).one() == 1234
    assert item.qty == 1234


def test_the_identity_map_reads_loaded_objects_without_making_states(
    session: Session[Engine],
) -> None:
    items = session.scalars(select(Item).order_by(Item.id).limit(3)).all()
    imap = session.identity_map
    assert len(imap) == 3
    assert set(imap.keys()) == {IdentityKey(Item, (i.id,)) for i in items}
    assert sorted(imap.values(), key=lambda o: o.id) == items  # type: ignore[attr-defined]
    assert IdentityKey(Item, (items[0].id,)) in imap
    assert imap[IdentityKey(Item, (items[1].id,))] is items[1]
    assert session.get(Item, items[2].id) is items[2]
    assert all(type(_held(i)) is int for i in items)
    assert all(i in session for i in items)  # membership asks for the state
    assert all(instance_state(i).persistent for i in items)


def test_a_loaded_object_is_detached_by_close_without_a_state_made(
    session: Session[Engine],
) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    session.close()
    assert type(_held(item)) is int  # close() made no state for it
    state = instance_state(item)
    assert state.detached
    assert state.key == IdentityKey(Item, (item.id,))
    assert object_session(item) is None
    assert item not in session
    item.qty = 5  # a change to a detached object does not begin the session
    assert not session.in_transaction()
    session.add(item)  # back in, as persistent and modified
    assert instance_state(item).persistent
    assert item in session.dirty


def test_a_loaded_object_outlives_its_dropped_session_detached(engine: Engine) -> None:
    session = Session(engine)
    item = session.scalars(select(Item).limit(1)).one()
    ref = weakref.ref(session)
    del session
    gc.collect()
    assert ref() is None
    state = instance_state(item)
    assert state.detached
    with Session(engine) as other:
        merged = other.merge(item)
        assert merged is not item
        assert merged.name == item.name


def test_a_reloaded_row_gives_a_new_object_and_leaves_the_old_one_detached(
    session: Session[Engine],
) -> None:
    old = session.scalars(select(Item).limit(1)).one()
    session.expunge_all()
    new = session.scalars(select(Item).where(Item.id == old.id)).one()
    assert new is not old
    assert instance_state(old).detached
    assert instance_state(new).persistent
    assert old not in session
    assert new in session
    with pytest.raises(InvalidRequestError, match="Can't attach instance"):
        session.add(old)  # its row is in the session as another object


def test_a_loaded_object_cannot_join_a_second_session(
    engine: Engine, session: Session[Engine]
) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    with Session(engine) as other, pytest.raises(InvalidRequestError, match="already attached"):
        other.add(item)
    assert instance_state(item).session is session


def test_close_tells_listeners_about_loaded_objects_leaving(
    session: Session[Engine],
) -> None:
    left: list[object] = []
    session.events.persistent_to_detached.listen(lambda _s, obj: left.append(obj))
    items = session.scalars(select(Item).limit(3)).all()
    session.close()
    assert sorted(map(id, left)) == sorted(map(id, items))


def test_the_map_forgets_loaded_objects_that_are_gone(session: Session[Engine]) -> None:
    items = session.scalars(select(Item)).all()
    assert len(session.identity_map) == 2000
    del items
    gc.collect()
    assert len(session.identity_map) == 0
    assert session.identity_map.all_states() == []


def test_commit_expires_loaded_objects_and_reloads_them(
    engine: Engine, session: Session[Engine]
) -> None:
    item = session.scalars(select(Item).limit(1)).one()
    session.commit()
    assert instance_state(item).expired == frozenset({"id", "name", "qty"})
    with engine.begin() as conn:
        conn.execute(update(Item).values(qty=77))
    assert item.qty == 77


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


def test_an_update_returning_refreshes_a_loaded_object_and_leaves_it_bare(
    session: Session[Engine],
) -> None:
    item = session.scalars(select(Item).order_by(Item.id).limit(1)).one()
    got = session.scalars(
        update(Item).where(Item.id == item.id).values(qty=321).returning(Item)
    ).one()
    assert got is item
    assert item.qty == 321
    assert type(_held(item)) is int  # refreshed without a state made
    assert item not in session.dirty


def test_a_sweep_drops_the_entries_of_objects_that_are_gone(
    session: Session[Engine],
) -> None:
    imap = session.identity_map
    items = session.scalars(select(Item).order_by(Item.id)).all()
    kept = items[::2]
    del items
    gc.collect()
    assert sum(map(len, imap.default_tables.values())) == 2000  # not swept yet
    imap.sweep()
    assert sum(map(len, imap.default_tables.values())) == len(kept) == 1000
    assert {id(o) for o in imap.values()} == {id(o) for o in kept}


def test_init_called_again_on_a_loaded_object_keeps_its_identity(
    session: Session[Engine],
) -> None:
    session.add(Tag(name="n1", value=1))
    session.commit()
    session.close()
    tag = session.scalars(select(Tag)).one()
    assert type(_held(tag)) is int
    tag.__init__(name="other", value=9)  # type: ignore[misc]  # writes __dict__ directly
    state = instance_state(tag)
    assert state.persistent
    assert state.identity == "n1"  # the key it was loaded with
    assert session.get(Tag, "n1") is tag


def test_a_savepoint_rollback_leaves_loaded_untouched_objects_alone(
    session: Session[Engine],
) -> None:
    kept, changed = session.scalars(select(Item).order_by(Item.id).limit(2)).all()
    savepoint = session.begin_nested()
    changed.qty = 500
    savepoint.rollback()
    assert type(_held(kept)) is int  # not made a state, not expired
    assert kept.__dict__.keys() >= {"id", "name", "qty"}
    assert instance_state(changed).expired  # the changed one reloads
    assert changed.qty == 1


def test_a_new_row_given_a_loaded_objects_key_displaces_it(session: Session[Engine]) -> None:
    last = session.scalars(select(Item).order_by(Item.id.desc()).limit(1)).one()
    key = last.id
    session.execute(delete(Item).where(Item.id == key))  # the row goes behind its back
    assert type(_held(last)) is int
    fresh = Item(name="fresh")
    session.add(fresh)
    with pytest.warns(SAWarning, match="Identity map already had an identity"):
        session.flush()  # SQLite gives the freed key again
    assert fresh.id == key
    assert session.get(Item, key) is fresh
    assert instance_state(last).detached
