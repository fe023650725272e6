"""The pure flush planner: table order by foreign keys, and the plan built from states."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, create_engine

from typed_session import (
    FlushError,
    IdentityMap,
    InstanceState,
    Mapped,
    Registry,
    column,
    entity,
    inspect_entity,
)
from typed_session import _lifecycle as lifecycle
from typed_session import instance_state as state_of
from typed_session._unitofwork import (
    DeleteRows,
    FlushPlan,
    InsertRows,
    TableStep,
    UpdateRow,
    UpdateRows,
    plan_flush,
    table_order,
)


def _table(metadata: MetaData, name: str, *references: str) -> Table:
    """A table ``name`` with an ``id`` key and one foreign-key column per referenced table."""
    fks: list[Column[int]] = [
        Column(f"{ref}_id", Integer, ForeignKey(f"{ref}.id")) for ref in references
    ]
    return Table(name, metadata, Column("id", Integer, primary_key=True), *fks)


def _names(tables: list[Table]) -> list[str]:
    return [t.name for t in tables]


# -- table_order --------------------------------------------------------------------------


def test_parent_before_child() -> None:
    m = MetaData()
    parent = _table(m, "parent")
    child = _table(m, "child", "parent")
    assert _names(table_order([child, parent])) == ["parent", "child"]
    assert _names(table_order([parent, child])) == ["parent", "child"]


@pytest.mark.parametrize("given_order", list(itertools.permutations(["a", "b", "c"])))
def test_chain_of_three(given_order: tuple[str, ...]) -> None:
    m = MetaData()
    tables = {"a": _table(m, "a"), "b": _table(m, "b", "a"), "c": _table(m, "c", "b")}
    assert _names(table_order(tables[n] for n in given_order)) == ["a", "b", "c"]


def test_self_referential_table_is_ignored() -> None:
    m = MetaData()
    node = _table(m, "node", "node")
    assert _names(table_order([node])) == ["node"]
    root = _table(m, "root")
    tree = _table(m, "tree", "tree", "root")
    assert _names(table_order([tree, root])) == ["root", "tree"]


def test_cycle_keeps_the_given_order() -> None:
    m = MetaData()
    a = _table(m, "a", "b")
    b = _table(m, "b", "a")
    assert _names(table_order([a, b])) == ["a", "b"]
    assert _names(table_order([b, a])) == ["b", "a"]


def test_cycle_does_not_disable_ordering_of_other_tables() -> None:
    m = MetaData()
    a = _table(m, "a", "b")
    b = _table(m, "b", "a")
    parent = _table(m, "parent")
    child = _table(m, "child", "parent")
    order = _names(table_order([child, parent, a, b]))
    assert order.index("parent") < order.index("child")


def test_references_outside_the_given_tables_are_ignored() -> None:
    m = MetaData()
    _table(m, "elsewhere")
    child = _table(m, "child", "elsewhere")
    other = _table(m, "other")
    assert _names(table_order([child, other])) == ["child", "other"]


def test_unresolvable_foreign_key_target_is_ignored() -> None:
    m = MetaData()
    child = _table(m, "child", "not_in_metadata")
    assert _names(table_order([child])) == ["child"]


def test_duplicates_are_listed_once() -> None:
    m = MetaData()
    parent = _table(m, "parent")
    child = _table(m, "child", "parent")
    assert _names(table_order([child, parent, child, parent])) == ["parent", "child"]


def test_empty() -> None:
    assert table_order([]) == []


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[Table], dict[str, set[str]]]:
    """Tables t0..tn-1 where ti may reference any tj with j < i (and itself), shuffled."""
    n = draw(st.integers(min_value=1, max_value=9))
    m = MetaData()
    refs: dict[str, set[str]] = {}
    tables: list[Table] = []
    for i in range(n):
        name = f"t{i}"
        chosen = {f"t{j}" for j in range(i) if draw(st.booleans())}
        self_ref = draw(st.booleans())
        tables.append(_table(m, name, *sorted(chosen), *([name] if self_ref else [])))
        refs[name] = chosen
    return draw(st.permutations(tables)), refs


@settings(deadline=None)
@given(dags())
def test_every_table_comes_after_the_tables_it_references(
    dag: tuple[list[Table], dict[str, set[str]]],
) -> None:
    tables, refs = dag
    order = _names(table_order(tables))
    assert sorted(order) == sorted(_names(tables))
    position = {name: i for i, name in enumerate(order)}
    for name, referenced in refs.items():
        for target in referenced:
            assert position[target] < position[name], (name, target, order)


@settings(deadline=None)
@given(dags(), st.data())
def test_a_subset_is_ordered_among_itself(
    dag: tuple[list[Table], dict[str, set[str]]], data: st.DataObject
) -> None:
    tables, refs = dag
    subset = data.draw(st.lists(st.sampled_from(tables), unique=True, min_size=1))
    order = _names(table_order(subset))
    assert sorted(order) == sorted(_names(subset))
    position = {name: i for i, name in enumerate(order)}
    for name in order:
        for target in refs[name] & position.keys():
            assert position[target] < position[name]


# -- plan_flush ---------------------------------------------------------------------------

reg = Registry()


@entity(reg, table="uow_parent")
class Parent:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


@entity(reg, table="uow_child")
class Child:
    id: Mapped[int] = column(primary_key=True, init=False)
    parent_id: Mapped[int] = column(foreign_key="uow_parent.id")
    label: Mapped[str | None] = column(default=None)


@entity(reg, table="uow_grandchild")
class GrandChild:
    id: Mapped[int] = column(primary_key=True, init=False)
    child_id: Mapped[int] = column(foreign_key="uow_child.id")


def _new(*objs: object) -> dict[InstanceState[Any], object]:
    return {state_of(o): o for o in objs}


def _persistent(obj: object, ident: Hashable) -> InstanceState[Any]:
    """Give a fresh object an identity, as if loaded (no session involved)."""
    state = state_of(obj)
    state.identity = ident
    return state


ENGINE = create_engine("sqlite://")  # never connected: the planner only names binds


def _plan(
    new: dict[InstanceState[Any], object],
    dirty: list[InstanceState[Any]],
    deleted: list[tuple[InstanceState[Any], object]],
) -> FlushPlan:
    return plan_flush(new, dirty, dict(deleted), bind_for=lambda _mapper, _token: ENGINE)


def _steps(plan: FlushPlan) -> list[tuple[str, type[Any]]]:
    return [
        (type(step).__name__, step.mapper.class_)
        for step in plan.steps
        if isinstance(step, TableStep)
    ]


def test_empty_plan() -> None:
    plan = _plan({}, [], [])
    assert isinstance(plan, FlushPlan)
    assert plan.empty
    assert plan == FlushPlan((), ())


def test_inserts_parent_table_first_rows_in_added_order() -> None:
    g = GrandChild(child_id=1)
    c1, c2 = Child(parent_id=1), Child(parent_id=2)
    p = Parent(name="p")
    plan = _plan(_new(g, c1, p, c2), [], [])
    assert _steps(plan) == [
        ("InsertRows", Parent),
        ("InsertRows", Child),
        ("InsertRows", GrandChild),
    ]
    child_step = plan.steps[1]
    assert isinstance(child_step, InsertRows)
    assert child_step.table is inspect_entity(Child).table
    assert child_step.bind is ENGINE
    assert child_step.states == (state_of(c1), state_of(c2))
    assert child_step.values[0] is c1.__dict__
    assert not plan.empty


def test_deletes_child_table_first() -> None:
    p = Parent(name="p")
    c = Child(parent_id=1)
    g = GrandChild(child_id=1)
    deleted = [(_persistent(p, 1), p), (_persistent(c, 1), c), (_persistent(g, 1), g)]
    plan = _plan({}, [], deleted)
    assert _steps(plan) == [
        ("DeleteRows", GrandChild),
        ("DeleteRows", Child),
        ("DeleteRows", Parent),
    ]
    first = plan.steps[0]
    assert isinstance(first, DeleteRows)
    assert first.states == (state_of(g),)


def test_updates_carry_the_changed_values() -> None:
    p = Parent(name="old")
    state = _persistent(p, 1)
    p.name = "new"
    plan = _plan({}, [state], [])
    assert _steps(plan) == [("UpdateRows", Parent)]
    step = plan.steps[0]
    assert isinstance(step, UpdateRows)
    (row,) = step.rows
    assert row == UpdateRow(state, p.__dict__, {"name": "new"}, 1)
    assert row.takes_over is None
    assert plan.clean == ()


def test_updates_and_deletes_of_a_table_go_in_primary_key_order() -> None:
    # as SQLAlchemy: rows are locked in one order whatever order they were changed in
    parents = [Parent(name=f"p{i}") for i in range(4)]
    states = [_persistent(p, ident) for p, ident in zip(parents, (3, 1, 4, 2), strict=True)]
    for p in parents:
        p.name += "!"
    plan = _plan({}, states, [])
    (step,) = plan.steps
    assert isinstance(step, UpdateRows)
    assert [row.where for row in step.rows] == [1, 2, 3, 4]
    doomed = [Child(parent_id=1) for _ in range(3)]
    deleted: list[tuple[InstanceState[Any], object]] = [
        (_persistent(c, ident), c) for c, ident in zip(doomed, (9, 7, 8), strict=True)
    ]
    (delete,) = _plan({}, [], deleted).steps
    assert isinstance(delete, DeleteRows)
    assert [s.identity for s in delete.states] == [7, 8, 9]


def test_keys_that_do_not_sort_keep_the_order_they_were_changed_in() -> None:
    parents = [Parent(name="a"), Parent(name="b"), Parent(name="c")]
    states = [_persistent(p, ident) for p, ident in zip(parents, (2, "x", 1), strict=True)]
    for p in parents:
        p.name += "!"
    (step,) = _plan({}, states, []).steps
    assert isinstance(step, UpdateRows)
    assert [row.where for row in step.rows] == [2, "x", 1]


def test_unchanged_dirty_state_is_clean() -> None:
    p = Parent(name="same")
    state = _persistent(p, 1)
    p.name = "other"
    p.name = "same"
    plan = _plan({}, [state], [])
    assert plan.empty
    assert plan.clean == (state,)


def test_dirty_state_that_is_deleted_is_not_updated() -> None:
    p = Parent(name="a")
    state = _persistent(p, 1)
    p.name = "b"
    plan = _plan({}, [state], [(state, p)])
    assert _steps(plan) == [("DeleteRows", Parent)]
    assert plan.clean == ()


def test_dirty_state_without_identity_is_skipped() -> None:
    p = Parent(name="a")
    plan = _plan({}, [state_of(p)], [])
    assert plan.empty
    assert plan.clean == ()


def test_updates_then_inserts_of_one_table_then_the_next_table() -> None:
    old = Parent(name="a")
    state = _persistent(old, 1)
    old.name = "b"
    new = Parent(name="n")
    c = Child(parent_id=1)
    plan = _plan(_new(c, new), [state], [])
    assert _steps(plan) == [
        ("UpdateRows", Parent),
        ("InsertRows", Parent),
        ("InsertRows", Child),
    ]


def test_a_pending_object_taking_a_deleted_key_is_a_row_switch() -> None:
    gone = Parent(name="gone")
    gone_state = _persistent(gone, 7)
    newcomer = Parent(name="new")
    newcomer.id = 7
    plan = _plan(_new(newcomer), [], [(gone_state, gone)])
    assert _steps(plan) == [("UpdateRows", Parent)]
    step = plan.steps[0]
    assert isinstance(step, UpdateRows)
    (row,) = step.rows
    assert row.state is state_of(newcomer)
    assert row.where == 7
    assert row.takes_over is gone_state
    assert row.changes == {"name": "new"}


def test_steps_are_keyed_by_table_and_bind() -> None:
    other = create_engine("sqlite://")
    binds = {Parent: ENGINE, Child: other}
    plan = plan_flush(
        _new(Child(parent_id=1), Parent(name="p")),
        [],
        {},
        bind_for=lambda mapper, _token: binds[mapper.class_],
    )
    assert [(step.table.name, step.bind) for step in plan.steps if isinstance(step, TableStep)] == [
        ("uow_parent", ENGINE),
        ("uow_child", other),
    ]


def test_rows_of_one_table_on_two_shards_are_a_step_each_on_its_shard() -> None:
    shard_a, shard_b = create_engine("sqlite://"), create_engine("sqlite://")
    binds = {"a": shard_a, "b": shard_b}
    first, second, third = Parent(name="1"), Parent(name="2"), Parent(name="3")
    for obj, token in ((first, "a"), (second, "b"), (third, "a")):
        lifecycle.to_shard(state_of(obj), token)
    plan = plan_flush(
        _new(first, second, third), [], {}, bind_for=lambda _mapper, token: binds[str(token)]
    )
    assert [
        (step.bind, len(step.states)) for step in plan.steps if isinstance(step, InsertRows)
    ] == [
        (shard_a, 2),
        (shard_b, 1),
    ]


def test_one_key_on_two_shards_is_no_identity_conflict() -> None:
    on_a, on_b = Parent(name="a"), Parent(name="b")
    on_a.id = on_b.id = 5
    lifecycle.to_shard(state_of(on_a), "a")
    lifecycle.to_shard(state_of(on_b), "b")
    plan = plan_flush(
        _new(on_a, on_b), [], {}, bind_for=lambda _m, _t: ENGINE, identity_map=IdentityMap()
    )
    assert _steps(plan) == [("InsertRows", Parent), ("InsertRows", Parent)]


def test_two_pending_objects_with_one_key_are_refused_before_any_sql() -> None:
    a, b = Parent(name="a"), Parent(name="b")
    a.id = b.id = 3
    with pytest.raises(FlushError, match="both have identity 3") as info:
        plan_flush(_new(a, b), [], {}, bind_for=lambda _m, _t: ENGINE, identity_map=IdentityMap())
    assert info.value.instance is b


def test_a_pending_object_with_a_persistent_key_is_refused_before_any_sql() -> None:
    imap = IdentityMap()
    loaded = Parent(name="loaded")
    imap.add(_persistent(loaded, 4))
    clash = Parent(name="clash")
    clash.id = 4
    with pytest.raises(FlushError, match="conflicts with persistent object"):
        plan_flush(_new(clash), [], {}, bind_for=lambda _m, _t: ENGINE, identity_map=imap)
    # the same key is fine when the persistent object is being deleted (a row switch)
    plan = plan_flush(
        _new(clash),
        [],
        {state_of(loaded): loaded},
        bind_for=lambda _m, _t: ENGINE,
        identity_map=imap,
    )
    assert _steps(plan) == [("UpdateRows", Parent)]


def test_missing_required_value_is_refused_before_any_sql() -> None:
    c = Child.__new__(Child)  # no constructor: parent_id never assigned
    with pytest.raises(FlushError, match=r"Child\.parent_id has no value") as info:
        _plan(_new(c), [], [])
    message = str(info.value)
    assert "uow_child.parent_id" in message
    assert "NOT NULL" in message
    assert info.value.instance is c


def test_missing_values_the_database_supplies_are_fine() -> None:
    # id is autoincrement, label is nullable: neither needs a value
    plan = _plan(_new(Child(parent_id=1)), [], [])
    (step,) = plan.steps
    assert isinstance(step, InsertRows)
    assert len(step.states) == len(step.values) == 1


def test_a_cycle_keeps_its_given_order_without_breaking_other_dependencies() -> None:
    md = MetaData()
    a = Table(
        "cy_a",
        md,
        Column("id", Integer, primary_key=True),
        Column("b_id", ForeignKey("cy_b.id", use_alter=True, name="cy_fk_ab")),
    )
    b = Table(
        "cy_b", md, Column("id", Integer, primary_key=True), Column("a_id", ForeignKey("cy_a.id"))
    )
    p = Table("cy_p", md, Column("id", Integer, primary_key=True))
    c = Table(
        "cy_c",
        md,
        Column("id", Integer, primary_key=True),
        Column("p_id", ForeignKey("cy_p.id")),
        Column("a_id", ForeignKey("cy_a.id")),
    )
    for offered in itertools.permutations([p, c, b, a]):
        order = table_order(offered)
        assert sorted(order, key=id) == sorted(offered, key=id)
        pos = {t: i for i, t in enumerate(order)}
        assert pos[p] < pos[c]
        assert pos[a] < pos[c]
        first_of_cycle = a if offered.index(a) < offered.index(b) else b
        assert order.index(first_of_cycle) < order.index(b if first_of_cycle is a else a)
