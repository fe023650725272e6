"""``typed_session._lifecycle`` without a database: records, snapshots, expiry, transitions.

States are built by hand: ``to_pending`` for pending ones, and for persistent ones the
identity fields are set directly here (tests may; the library writes them only in
``_lifecycle.py``). The identity map gets an owner whose ``session`` is alive, so that
``object_state`` reports PENDING / PERSISTENT rather than TRANSIENT / DETACHED.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy.exc import InvalidRequestError

from typed_session import (
    DetachedInstanceError,
    IdentityMap,
    InstanceState,
    Mapped,
    ObjectState,
    Registry,
    column,
    entity,
    inspect_entity,
    instance_state,
)
from typed_session import _lifecycle as lc
from typed_session._lifecycle import SessionObjects, TransactionRecords, _new_snapshot
from typed_session._mapping.relationships import Relationship
from typed_session._state import STATE_ATTR
from typed_session._typing import MISSING, Identity

reg = Registry()


@entity(reg, table="lc_unit_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)


class FakeOwner:
    """A live session as states see it; loading fills expired attributes with ``"loaded"``."""

    objects: SessionObjects  # set once the objects exist (they need the owner first)

    def __init__(self) -> None:
        self.session: object | None = object()
        self.loads: list[InstanceState[Any]] = []
        self.begun = False

    def autobegin(self) -> None:
        self.begun = True

    def load_expired(self, state: InstanceState[Any], attribute: str | None = None, /) -> None:
        self.loads.append(state)
        obj = state.obj()
        assert obj is not None
        for key in state.expired or ():
            obj.__dict__[key] = "loaded"
        lc.mark_loaded(state)

    def load_related(self, state: InstanceState[Any], relationship: Relationship, /) -> object:
        raise AssertionError("these entities have no relationships")

    def cascade_add(self, obj: object, /) -> None:
        raise AssertionError("these entities have no relationships")

    def discard_pending(self, obj: object, /) -> None:
        raise AssertionError("these entities have no relationships")


#: the identity map holds its owner weakly (a session holds its owner): keep them alive
OWNERS: list[FakeOwner] = []


def new_objects() -> SessionObjects:
    owner = FakeOwner()
    OWNERS.append(owner)
    owner.objects = SessionObjects(IdentityMap(owner))
    return owner.objects


def persistent(
    objects: SessionObjects, obj: User, identity: Identity | None = None
) -> InstanceState[User]:
    """Make ``obj`` persistent in ``objects`` under ``identity`` (its id by default)."""
    state = instance_state(obj)
    state.identity = obj.id if identity is None else identity
    state.identity_map = objects.identity_map
    assert objects.identity_map.add(state) is None
    assert state.object_state is ObjectState.PERSISTENT
    return state


def pending(objects: SessionObjects, obj: User) -> InstanceState[User]:
    state = instance_state(obj)
    lc.to_pending(objects, state, obj)
    assert state.object_state is ObjectState.PENDING
    return state


def lookup(objects: SessionObjects, identity: Identity) -> InstanceState[User] | None:
    return objects.identity_map.lookup(inspect_entity(User), identity)


def column_values(obj: User) -> dict[str, Any]:
    return {k: v for k, v in obj.__dict__.items() if k != STATE_ATTR}


def state_of(obj: User) -> ObjectState:
    # a call, not a property read, so that mypy does not narrow it across statements
    return instance_state(obj).object_state


# calls rather than attribute reads, for the same reason: the fields change under mypy's eyes


def expired_of(state: InstanceState[Any]) -> frozenset[str] | None:
    return state.expired


def committed_of(state: InstanceState[Any]) -> dict[str, object] | None:
    return state.committed


def strong_of(state: InstanceState[Any]) -> object:
    return state.strong


# -- TransactionRecords.snapshot -------------------------------------------------------


def test_snapshot_of_empty_records_is_empty() -> None:
    snap = TransactionRecords().snapshot()
    assert snap == _new_snapshot(frozenset(), frozenset(), (), frozenset())
    assert snap.dirty == frozenset()


def test_snapshot_holds_each_record() -> None:
    a, b, c, d = (User(id=i, name=str(i)) for i in range(4))
    sa, sb, sc, sd = (instance_state(o) for o in (a, b, c, d))
    records = TransactionRecords()
    records.inserted[sa] = None
    records.dirty[sb] = None
    records.deleted[sc] = None
    records.rekeyed[sd] = 30
    records.rekeyed[sb] = 10

    snap = records.snapshot()

    assert snap.inserted == frozenset({sa})
    assert snap.dirty == frozenset({sb})
    assert snap.deleted == frozenset({sc})
    assert snap.rekeyed == ((sd, 30), (sb, 10)), "re-keyed states in recording order"
    assert isinstance(snap.inserted, frozenset)
    assert isinstance(snap.rekeyed, tuple)


def test_snapshot_is_frozen_and_independent_of_later_records() -> None:
    a, b = User(id=1, name="a"), User(id=2, name="b")
    records = TransactionRecords()
    records.inserted[instance_state(a)] = None
    snap = records.snapshot()

    records.inserted[instance_state(b)] = None
    records.rekeyed[instance_state(a)] = 5
    records.clear()

    assert snap.inserted == frozenset({instance_state(a)})
    assert snap.rekeyed == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.inserted = frozenset()  # type: ignore[misc]  # frozen on purpose


def test_clear_forgets_every_record() -> None:
    state = instance_state(User(id=1, name="a"))
    records = TransactionRecords()
    records.inserted[state] = None
    records.dirty[state] = None
    records.deleted[state] = None
    records.rekeyed[state] = 3

    records.clear()

    assert records.snapshot() == TransactionRecords().snapshot()


# -- release_into ----------------------------------------------------------------------


def test_release_into_adds_the_childs_records_to_the_parents() -> None:
    users = [User(id=i, name=str(i)) for i in range(6)]
    s0, s1, s2, s3, s4, s5 = (instance_state(u) for u in users)
    parent = TransactionRecords()
    parent.inserted[s0] = None
    parent.dirty[s1] = None
    parent.deleted[s2] = None
    child = TransactionRecords()
    child.inserted[s3] = None
    child.dirty[s4] = None
    child.deleted[s5] = None

    lc.release_into(parent, child)

    assert list(parent.inserted) == [s0, s3]
    assert list(parent.dirty) == [s1, s4]
    assert list(parent.deleted) == [s2, s5]
    assert list(child.inserted) == [s3], "the child's records are left as they are"


def test_release_into_keeps_the_parents_first_old_identity() -> None:
    both, child_only, parent_only = (User(id=i, name="x") for i in range(3))
    sb, sc, sp = instance_state(both), instance_state(child_only), instance_state(parent_only)
    parent = TransactionRecords()
    parent.rekeyed[sb] = 1  # 1 -> 2 before the SAVEPOINT
    parent.rekeyed[sp] = 7
    child = TransactionRecords()
    child.rekeyed[sb] = 2  # 2 -> 3 inside it
    child.rekeyed[sc] = 20

    lc.release_into(parent, child)

    assert parent.rekeyed == {sb: 1, sp: 7, sc: 20}


# -- restore_snapshot ------------------------------------------------------------------


def test_restore_dirty_only_expires_modified_and_recorded_dirty_states() -> None:
    objects = new_objects()
    changed, updated, untouched = User(id=1, name="a"), User(id=2, name="b"), User(id=3, name="c")
    s_changed = persistent(objects, changed)
    s_updated = persistent(objects, updated)
    s_untouched = persistent(objects, untouched)
    changed.name = "changed"  # modified since the boundary began
    records = TransactionRecords()
    records.dirty[s_updated] = None  # UPDATE flushed inside the boundary

    lc.restore_snapshot(objects, records, dirty_only=True)

    mapper = inspect_entity(User)
    assert s_changed.expired == mapper.column_key_set
    assert s_updated.expired == mapper.column_key_set
    assert column_values(changed) == {}
    assert column_values(updated) == {}
    assert s_untouched.expired is None
    assert column_values(untouched) == {"id": 3, "name": "c", "email": None}
    assert not s_changed.modified
    assert s_changed.strong is None
    assert objects.identity_map.modified == {}
    assert all(state_of(u) is ObjectState.PERSISTENT for u in (changed, updated, untouched))


def test_restore_not_dirty_only_expires_every_persistent_state() -> None:
    objects = new_objects()
    users = [User(id=i, name=str(i)) for i in range(3)]
    states = [persistent(objects, u) for u in users]

    lc.restore_snapshot(objects, TransactionRecords(), dirty_only=False)

    assert all(s.expired == inspect_entity(User).column_key_set for s in states)
    assert all(column_values(u) == {} for u in users)
    assert all(state_of(u) is ObjectState.PERSISTENT for u in users)


def test_restore_makes_inserted_and_pending_states_transient() -> None:
    objects = new_objects()
    inserted, added = User(id=1, name="ins"), User(id=2, name="new")
    s_inserted = persistent(objects, inserted)
    s_added = pending(objects, added)
    s_inserted.strong = inserted
    s_inserted.committed = {"name": "old"}
    records = TransactionRecords()
    records.inserted[s_inserted] = None

    lc.restore_snapshot(objects, records)

    for obj, state in ((inserted, s_inserted), (added, s_added)):
        assert state_of(obj) is ObjectState.TRANSIENT
        assert state.identity is None
        assert state.identity_map is None
        assert state.committed is None
        assert state.strong is None
    assert objects.new == {}
    assert lookup(objects, 1) is None
    assert len(objects.identity_map) == 0
    # a transient object keeps what it holds: it is not expired
    assert column_values(inserted) == {"id": 1, "name": "ins", "email": None}
    assert s_inserted.expired is None


def test_restore_gives_rekeyed_states_their_old_identity() -> None:
    objects = new_objects()
    user = User(id=10, name="a")
    state = persistent(objects, user)
    records = TransactionRecords()
    records.rekeyed[state] = 1  # was 1, flushed as 10

    lc.restore_snapshot(objects, records, dirty_only=True)

    assert state.identity == 1
    assert lookup(objects, 1) is state
    assert lookup(objects, 10) is None
    assert state_of(user) is ObjectState.PERSISTENT


def test_restore_gives_a_detached_rekeyed_state_its_old_identity() -> None:
    objects = new_objects()
    user = User(id=10, name="a")
    state = persistent(objects, user)
    lc.detach(objects, state)
    records = TransactionRecords()
    records.rekeyed[state] = 1

    lc.restore_snapshot(objects, records)

    assert state.identity == 1
    assert state_of(user) is ObjectState.DETACHED
    assert lookup(objects, 1) is None, "a detached state is not indexed again"


def test_restore_leaves_an_inserted_then_rekeyed_state_transient() -> None:
    objects = new_objects()
    user = User(id=10, name="a")
    state = persistent(objects, user)
    records = TransactionRecords()
    records.inserted[state] = None
    records.rekeyed[state] = 1

    lc.restore_snapshot(objects, records)

    assert state.identity is None
    assert state_of(user) is ObjectState.TRANSIENT
    assert lookup(objects, 1) is None
    assert lookup(objects, 10) is None


def test_restore_of_swapped_identities_indexes_both_states() -> None:
    objects = new_objects()
    a, b = User(id=2, name="a"), User(id=1, name="b")
    sa = persistent(objects, a)  # was 1, now 2
    sb = persistent(objects, b)  # was 2, now 1
    records = TransactionRecords()
    records.rekeyed[sa] = 1
    records.rekeyed[sb] = 2

    lc.restore_snapshot(objects, records, dirty_only=True)

    assert (sa.identity, sb.identity) == (1, 2)
    assert lookup(objects, 1) is sa
    assert lookup(objects, 2) is sb


def test_restore_brings_deleted_states_back_and_drops_marks_for_deletion() -> None:
    objects = new_objects()
    gone, marked = User(id=1, name="gone"), User(id=2, name="marked")
    s_gone = persistent(objects, gone)
    s_marked = persistent(objects, marked)
    # the flushed DELETE, as after_flush leaves it
    objects.identity_map.discard(s_gone)
    s_gone.deleted = True
    assert state_of(gone) is ObjectState.DELETED
    objects.deleted[s_marked] = marked
    records = TransactionRecords()
    records.deleted[s_gone] = None

    lc.restore_snapshot(objects, records)

    assert not s_gone.deleted
    assert state_of(gone) is ObjectState.PERSISTENT
    assert lookup(objects, 1) is s_gone
    assert objects.deleted == {}
    assert state_of(marked) is ObjectState.PERSISTENT


# -- record_change / mark_clean --------------------------------------------------------


def test_record_change_keeps_the_first_old_value_and_holds_the_object() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    d = user.__dict__

    lc.record_change(state, user, d, "name")
    d["name"] = "b"
    lc.record_change(state, user, d, "name")
    lc.record_change(state, user, d, "email")

    assert state.committed == {"name": "a", "email": None}
    assert state.modified
    assert state.strong is user
    assert list(objects.identity_map.modified) == [state]


def test_record_change_of_an_unset_attribute_remembers_missing() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    del user.__dict__["email"]

    lc.record_change(state, user, user.__dict__, "email")

    assert state.committed == {"email": MISSING}


def test_setattr_on_a_persistent_object_records_the_change() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)

    user.name = "b"
    user.name = "c"

    assert state.committed == {"name": "a"}
    assert state.strong is user
    assert state in objects.identity_map.modified
    assert state.changes(user.__dict__) == {"name": "c"}


def test_record_change_outside_a_session_holds_nothing() -> None:
    user = User(id=1, name="a")
    state = instance_state(user)
    state.identity = 1  # detached

    lc.record_change(state, user, user.__dict__, "name")

    assert state.modified
    assert state.committed == {"name": "a"}
    assert state.strong is None, "only an identity map's modified objects are held"


def test_mark_clean_forgets_history_and_releases_the_object() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    user.name = "b"
    assert state in objects.identity_map.modified

    lc.mark_clean(state)

    assert state.committed is None
    assert state.strong is None
    assert not state.modified
    assert objects.identity_map.modified == {}
    assert not objects.has_changes()
    user.name = "c"  # a new history starts from the current value
    assert committed_of(state) == {"name": "b"}
    assert strong_of(state) is user
    assert list(objects.identity_map.modified) == [state]


# -- expire / unexpire -----------------------------------------------------------------


def test_expire_all_columns_shares_the_mappers_key_set() -> None:
    objects = new_objects()
    a, b = User(id=1, name="a"), User(id=2, name="b")
    sa, sb = persistent(objects, a), persistent(objects, b)
    a.name = "changed"

    lc.expire(sa, a.__dict__)
    lc.expire(sb, b.__dict__)

    mapper = inspect_entity(User)
    assert sa.expired is mapper.column_key_set
    assert sb.expired is mapper.column_key_set
    assert a.__dict__ == {STATE_ATTR: sa}
    assert not sa.modified
    assert sa.committed is None
    assert sa.strong is None
    assert objects.identity_map.modified == {}
    assert mapper.column_key_set == frozenset({"id", "name", "email"})


def test_expire_all_columns_keeps_unmapped_attributes() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    user.note = "mine"  # type: ignore[attr-defined]  # a plain, unmapped attribute

    lc.expire(state, user.__dict__)

    assert state.expired == inspect_entity(User).column_key_set
    assert column_values(user) == {"note": "mine"}


def test_expire_all_columns_of_a_partly_loaded_object() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    del user.__dict__["email"]

    lc.expire(state, user.__dict__)

    assert state.expired == frozenset({"id", "name", "email"})
    assert column_values(user) == {}


def test_expire_some_keys() -> None:
    objects = new_objects()
    user = User(id=1, name="a", email="e")
    state = persistent(objects, user)
    user.name = "b"
    user.email = "f"

    lc.expire(state, user.__dict__, ["name"])

    assert state.expired == frozenset({"name"})
    assert column_values(user) == {"id": 1, "email": "f"}
    assert state.committed == {"email": "e"}, "the expired key's history is dropped"
    assert state.modified, "the other change is still to flush"

    lc.expire(state, user.__dict__, ["email"])

    assert state.expired == frozenset({"name", "email"})
    assert column_values(user) == {"id": 1}


def test_reading_an_expired_attribute_loads_through_the_owner() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    lc.expire(state, user.__dict__, ["name"])

    assert user.name == "loaded"
    assert state.expired is None
    owner = objects.identity_map.owner
    assert isinstance(owner, FakeOwner)
    assert owner.loads == [state]


def test_unexpire_removes_one_key_and_ends_at_none() -> None:
    state = instance_state(User(id=1, name="a"))
    state.expired = frozenset({"name", "email"})

    lc.unexpire(state, "name")
    assert state.expired == frozenset({"email"})

    lc.unexpire(state, "id")  # not expired: nothing changes
    assert state.expired == frozenset({"email"})

    lc.unexpire(state, "email")
    assert expired_of(state) is None

    lc.unexpire(state, "email")
    assert expired_of(state) is None


def test_unexpire_does_not_touch_the_mappers_key_set() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    state = persistent(objects, user)
    lc.expire(state, user.__dict__)
    mapper = inspect_entity(User)

    user.name = "b"  # assigning an expired attribute unexpires it

    assert state.expired == frozenset({"id", "email"})
    assert mapper.column_key_set == frozenset({"id", "name", "email"})


# -- to_transient / to_detached_from_transient / attach_detached -------------------------


def test_to_transient_from_persistent() -> None:
    objects = new_objects()
    user = User(id=1, name="a", email="e")
    state = persistent(objects, user)
    user.name = "b"
    lc.expire(state, user.__dict__, ["email"])
    state.deleted = True

    lc.to_transient(objects, state)

    assert state_of(user) is ObjectState.TRANSIENT
    assert state.identity is None
    assert state.identity_map is None
    assert not state.deleted
    assert state.expired is None, "expired attributes are forgotten"
    assert state.committed is None
    assert not state.modified
    assert state.strong is None
    assert lookup(objects, 1) is None
    assert objects.identity_map.modified == {}
    assert column_values(user) == {"id": 1, "name": "b"}, "loaded values stay"


def test_to_transient_from_pending_and_marked_for_deletion() -> None:
    objects = new_objects()
    added, marked = User(id=1, name="a"), User(id=2, name="b")
    s_added = pending(objects, added)
    s_marked = persistent(objects, marked)
    objects.deleted[s_marked] = marked

    lc.to_transient(objects, s_added)
    lc.to_transient(objects, s_marked)

    assert objects.new == {}
    assert objects.deleted == {}
    assert state_of(added) is ObjectState.TRANSIENT
    assert state_of(marked) is ObjectState.TRANSIENT


def test_to_transient_without_a_session() -> None:
    user = User(id=1, name="a")
    state = instance_state(user)
    state.identity = 1
    state.expired = frozenset({"email"})
    assert state_of(user) is ObjectState.DETACHED

    lc.to_transient(None, state)

    assert state_of(user) is ObjectState.TRANSIENT
    assert state.expired is None


def test_to_detached_from_transient_expires_what_is_not_loaded() -> None:
    user = User(id=1, name="a")
    del user.__dict__["email"]
    state = instance_state(user)
    state.committed = {"name": "x"}

    lc.to_detached_from_transient(state, 1)

    assert state_of(user) is ObjectState.DETACHED
    assert state.identity == 1
    assert state.expired == frozenset({"email"})
    assert committed_of(state) is None
    with pytest.raises(DetachedInstanceError):
        _ = user.email


def test_to_detached_from_transient_of_a_loaded_object_expires_nothing() -> None:
    user = User(id=1, name="a")
    state = instance_state(user)

    lc.to_detached_from_transient(state, 1)

    assert state.expired is None
    assert state_of(user) is ObjectState.DETACHED


def test_attach_detached_then_loads_the_rest() -> None:
    objects = new_objects()
    user = User(id=1, name="a")
    del user.__dict__["email"]
    state = instance_state(user)
    lc.to_detached_from_transient(state, 1)

    lc.attach_detached(objects, state, user)

    assert state_of(user) is ObjectState.PERSISTENT
    assert lookup(objects, 1) is state
    assert user.email == "loaded"


def test_attach_detached_refuses_a_taken_identity() -> None:
    objects = new_objects()
    there = User(id=1, name="there")
    persistent(objects, there)
    other = User(id=1, name="other")
    state = instance_state(other)
    lc.to_detached_from_transient(state, 1)

    with pytest.raises(
        InvalidRequestError, match=r"^Can't attach instance .* is already present in this session"
    ):
        lc.attach_detached(objects, state, other)

    assert state_of(other) is ObjectState.DETACHED
    assert lookup(objects, 1) is instance_state(there)
