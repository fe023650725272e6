"""Instance state, identity keys and the weak-referencing identity map."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.pool import SingletonThreadPool

from typed_session import (
    IdentityKey,
    IdentityMap,
    Mapped,
    ObjectState,
    Registry,
    Session,
    UnmappedInstanceError,
    column,
    entity,
    instance_state,
    object_session,
)

reg = Registry()


@entity(reg, table="si_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)


@entity(reg, table="si_pairs")
class Pair:
    a: Mapped[int] = column(primary_key=True)
    b: Mapped[str] = column(primary_key=True)


@pytest.fixture
def engine(memory_engine: Engine) -> Engine:
    reg.create_all(memory_engine)
    return memory_engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session[Engine]]:
    with Session(engine) as s:
        yield s


def _seed(engine: Engine, *names: str) -> None:
    with Session(engine) as s:
        s.add_all([User(name=n) for n in names])
        s.commit()


def _updates(engine: Engine) -> list[str]:
    """Start recording the UPDATE statements sent through ``engine``; return the record."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(*args: object) -> None:
        statement = args[2]
        assert isinstance(statement, str)
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    return seen


def _lifecycle(obj: object) -> ObjectState:
    # a call, not a property read, so that mypy does not narrow it across statements
    return instance_state(obj).object_state


def _history(obj: object) -> dict[str, object] | None:
    return instance_state(obj).committed


# -- instance_state ---------------------------------------------------------------------


def test_fresh_object_is_transient() -> None:
    u = User(name="x")
    state = instance_state(u)
    assert state.object_state is ObjectState.TRANSIENT
    assert state.transient
    assert state.identity is None
    assert state.key is None
    assert state.session is None
    assert object_session(u) is None


def test_instance_state_is_created_once() -> None:
    u = User(name="x")
    assert instance_state(u) is instance_state(u)
    assert instance_state(u).obj() is u


def test_instance_state_of_a_plain_object() -> None:
    class Plain:
        pass

    with pytest.raises(UnmappedInstanceError, match=r"not an instance of a mapped class"):
        instance_state(Plain())


# -- IdentityKey --------------------------------------------------------------------------


def test_identity_key_is_frozen() -> None:
    key = IdentityKey(User, (1,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.primary_key = (2,)  # type: ignore[misc]


def test_identity_key_equality_and_hash_by_value() -> None:
    a = IdentityKey(User, (1,))
    b = IdentityKey(User, (1,), None)
    assert a == b
    assert hash(a) == hash(b)
    assert {a: "x"}[b] == "x"
    assert len({a, b}) == 1
    assert a != IdentityKey(User, (2,))
    other_entity: IdentityKey[object] = IdentityKey(Pair, (1,))
    assert a != other_entity
    assert a != IdentityKey(User, (1,), "shard")
    assert dataclasses.replace(a, identity_token="shard") == IdentityKey(User, (1,), "shard")


def test_identity_key_fields() -> None:
    key = IdentityKey(Pair, (1, "b"), "t")
    assert key.entity is Pair
    assert key.primary_key == (1, "b")
    assert key.identity_token == "t"


def test_state_key_after_flush(session: Session[Engine]) -> None:
    u = User(name="x")
    p = Pair(a=1, b="b")
    session.add_all([u, p])
    session.flush()
    assert instance_state(u).key == IdentityKey(User, (u.id,))
    assert instance_state(p).key == IdentityKey(Pair, (1, "b"))


# -- the identity map ---------------------------------------------------------------------


def test_identity_map_is_mapping_like(session: Session[Engine]) -> None:
    u = User(name="x")
    session.add(u)
    session.flush()
    imap = session.identity_map
    assert isinstance(imap, IdentityMap)
    key = IdentityKey(User, (u.id,))
    assert key in imap
    assert imap[key] is u
    assert imap.get(key) is u
    assert list(imap) == [key]
    assert imap.keys() == [key]
    assert imap.values() == [u]
    assert len(imap) == 1
    missing = IdentityKey(User, (999,))
    assert missing not in imap
    assert imap.get(missing) is None
    with pytest.raises(KeyError):
        imap[missing]
    assert "not a key" not in imap


def test_pending_objects_are_not_in_the_identity_map(session: Session[Engine]) -> None:
    session.add(User(name="x"))
    assert len(session.identity_map) == 0
    assert len(session.new) == 1


def test_one_object_per_row(engine: Engine, session: Session[Engine]) -> None:
    _seed(engine, "a", "b")
    first = session.scalars(select(User).order_by(User.id)).all()
    again = session.scalars(select(User).order_by(User.id)).all()
    assert [x is y for x, y in zip(first, again, strict=True)] == [True, True]
    assert session.get(User, first[0].id) is first[0]
    assert session.execute(select(User.id, User).where(User.id == first[1].id)).one()[1] is first[1]


def test_identity_map_references_objects_weakly(engine: Engine, session: Session[Engine]) -> None:
    _seed(engine, "a", "b", "c")
    users = session.scalars(select(User)).all()
    assert len(session.identity_map) == 3
    del users
    gc.collect()
    assert len(session.identity_map) == 0
    assert session.identity_map.values() == []


def test_collected_object_is_loaded_afresh(engine: Engine, session: Session[Engine]) -> None:
    _seed(engine, "a")
    first_ref = weakref.ref(session.get_one(User, 1))
    gc.collect()
    assert first_ref() is None
    again = session.get_one(User, 1)
    assert again.name == "a"
    assert len(session.identity_map) == 1


def test_in_memory_sqlite_shares_one_database_per_thread(engine: Engine) -> None:
    # what these tests rely on: every connection of the thread is the same connection
    assert isinstance(engine.pool, SingletonThreadPool)
    _seed(engine, "a")
    with Session(engine) as other:
        assert other.scalars(select(User.name)).all() == ["a"]


def test_modified_object_is_held_strongly_until_flushed(
    engine: Engine, session: Session[Engine]
) -> None:
    _seed(engine, "a", "b")
    u = session.get_one(User, 1)
    u.name = "changed"
    del u
    gc.collect()
    assert len(session.identity_map) == 1
    dirty = session.dirty
    assert len(dirty) == 1
    assert isinstance(dirty[0], User)
    assert dirty[0].name == "changed"
    del dirty
    session.flush()
    assert session.dirty == []
    gc.collect()
    assert len(session.identity_map) == 0  # flushed: weak again
    session.commit()
    with Session(engine) as other:
        assert other.get_one(User, 1).name == "changed"
        assert other.get_one(User, 2).name == "b"


def test_pending_objects_are_held_strongly(engine: Engine, session: Session[Engine]) -> None:
    session.add(User(name="kept"))
    gc.collect()
    assert len(session.new) == 1
    session.commit()
    with Session(engine) as other:
        assert other.scalars(select(User.name)).all() == ["kept"]


@pytest.fixture(scope="module")
def seeded_engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    reg.create_all(eng)
    _seed(eng, *(f"u{i}" for i in range(1, 9)))
    try:
        yield eng
    finally:
        eng.dispose()


@settings(max_examples=40, deadline=None)
@given(
    reads=st.lists(
        st.tuples(st.sampled_from(["get", "select", "execute"]), st.integers(1, 8)),
        min_size=1,
        max_size=12,
    )
)
def test_one_object_per_identity_key_whatever_the_reads(
    seeded_engine: Engine, reads: list[tuple[str, int]]
) -> None:
    with Session(seeded_engine) as session:
        seen: dict[int, User] = {}
        for how, ident in reads:
            if how == "get":
                obj = session.get_one(User, ident)
            elif how == "select":
                obj = session.scalars(select(User).where(User.id == ident)).one()
            else:
                obj = session.execute(select(User.name, User).where(User.id == ident)).one()[1]
            assert seen.setdefault(ident, obj) is obj
            assert obj.id == ident
        assert len(session.identity_map) == len(seen)


# -- the five lifecycle states ------------------------------------------------------------


def test_object_state_all_five(session: Session[Engine]) -> None:
    u = User(name="x")
    state = instance_state(u)
    assert _lifecycle(u) is ObjectState.TRANSIENT

    session.add(u)
    assert _lifecycle(u) is ObjectState.PENDING
    assert state.pending
    assert object_session(u) is session
    assert u in session

    session.flush()
    assert _lifecycle(u) is ObjectState.PERSISTENT
    assert state.persistent
    assert u in session

    session.delete(u)
    assert _lifecycle(u) is ObjectState.PERSISTENT  # marked, not flushed yet
    assert u in session.deleted
    session.flush()
    assert _lifecycle(u) is ObjectState.DELETED
    assert state.was_deleted
    assert u not in session

    session.commit()
    assert _lifecycle(u) is ObjectState.DETACHED
    assert state.detached
    assert object_session(u) is None


def test_expunge_detaches_a_persistent_object(session: Session[Engine]) -> None:
    u = User(name="x")
    session.add(u)
    session.flush()
    session.expunge(u)
    assert instance_state(u).object_state is ObjectState.DETACHED
    assert u not in session


def test_expunge_makes_a_pending_object_transient(session: Session[Engine]) -> None:
    u = User(name="x")
    session.add(u)
    session.expunge(u)
    assert instance_state(u).object_state is ObjectState.TRANSIENT


def test_close_detaches_everything(engine: Engine) -> None:
    _seed(engine, "a")
    with Session(engine) as s:
        u = s.get_one(User, 1)
        assert instance_state(u).object_state is ObjectState.PERSISTENT
    assert instance_state(u).object_state is ObjectState.DETACHED


def test_rollback_returns_states(session: Session[Engine]) -> None:
    kept = User(name="kept")
    session.add(kept)
    session.commit()
    new = User(name="new")
    session.add(new)
    session.delete(kept)
    session.flush()
    assert instance_state(new).object_state is ObjectState.PERSISTENT
    assert instance_state(kept).object_state is ObjectState.DELETED
    session.rollback()
    assert instance_state(new).object_state is ObjectState.TRANSIENT
    assert instance_state(kept).object_state is ObjectState.PERSISTENT


# -- write history ------------------------------------------------------------------------


def test_committed_holds_the_first_old_value_only(engine: Engine, session: Session[Engine]) -> None:
    _seed(engine, "a")
    u = session.get_one(User, 1)
    assert _history(u) is None
    assert not instance_state(u).modified
    u.name = "b"
    assert _history(u) == {"name": "a"}
    assert instance_state(u).modified
    u.name = "c"
    assert _history(u) == {"name": "a"}
    u.email = "e"
    assert _history(u) == {"name": "a", "email": None}
    assert instance_state(u).changes(u.__dict__) == {"name": "c", "email": "e"}
    session.flush()
    assert _history(u) is None
    assert not instance_state(u).modified


def test_writes_to_new_objects_keep_no_history(session: Session[Engine]) -> None:
    u = User(name="a")
    u.name = "b"
    assert instance_state(u).committed is None
    session.add(u)
    u.name = "c"
    assert instance_state(u).committed is None
    assert session.dirty == []


def test_writing_the_old_value_back_updates_nothing(
    engine: Engine, session: Session[Engine]
) -> None:
    _seed(engine, "a")
    u = session.get_one(User, 1)
    updates = _updates(engine)
    u.name = "b"
    u.name = "a"
    assert session.dirty == [u]
    session.flush()
    assert updates == []
    assert session.dirty == []
    assert instance_state(u).committed is None


def test_update_sets_only_changed_columns(engine: Engine, session: Session[Engine]) -> None:
    _seed(engine, "a")
    u = session.get_one(User, 1)
    updates = _updates(engine)
    u.email = "e"
    session.flush()
    assert len(updates) == 1
    assert "email" in updates[0]
    assert "name" not in updates[0].split("WHERE")[0]
