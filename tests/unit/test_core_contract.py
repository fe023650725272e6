"""Contract tests of ``typed_session._core``: the private SQLAlchemy Core behaviour relied on.

Each test pins exactly what the package needs from one private Core name, so that a Core
upgrade that changes it fails here, naming the wrapper, rather than somewhere in loading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    FromClause,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    UpdateBase,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import MissingGreenlet, MultipleResultsFound, NoResultFound

from typed_session import IdentityMap, Mapped, Registry, column, entity, inspect_entity
from typed_session._core import (
    StatementOption,
    annotate,
    annotations_of,
    await_,
    greenlet_spawn,
    has_limit,
    in_greenlet,
    object_result,
    raw_columns,
    returning_columns,
    statement_options,
)
from typed_session._loading import entity_columns, execute
from typed_session._mapping.mapper import ENTITY_ANNOTATION

metadata = MetaData()
things = Table(
    "cc_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(20)),
)
others = Table(
    "cc_others",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("x", String(20)),
)

reg = Registry()


@entity(reg, table="cc_widgets")
class Widget:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]
    size: Mapped[int | None] = column(default=None)


class Marker:
    """An arbitrary Python object used as an annotation value (a mapper is one)."""


class Loaded:
    """Stands for a loaded entity instance in a result."""


# -- annotate / annotations_of (FromClause._annotate, ClauseElement._annotations) --------


def test_annotate_returns_a_from_clause_carrying_the_values() -> None:
    marker = Marker()
    annotated = annotate(things, {"mark": marker, "n": 1})

    assert isinstance(annotated, FromClause), "FromClause._annotate no longer returns a FromClause"
    assert annotated is not things, "FromClause._annotate must return a copy, not the table"
    carried = annotations_of(annotated)
    assert carried["mark"] is marker, "annotation values must be carried as they are"
    assert carried["n"] == 1
    assert annotations_of(things) == {}, "annotating must not mark the original table"


def test_annotate_copies_the_mapping_passed() -> None:
    values: dict[str, Any] = {"mark": 1}
    annotated = annotate(things, values)
    values["mark"] = 2
    values["late"] = 3

    assert dict(annotations_of(annotated)) == {"mark": 1}


def test_an_annotated_table_has_the_tables_own_columns() -> None:
    annotated = annotate(things, {"mark": Marker()})

    assert list(annotated.c.keys()) == ["id", "label"]
    assert all(a is t for a, t in zip(annotated.c, things.c, strict=True)), (
        "the annotated table's .c must hold the table's own Column objects"
    )
    assert annotated.c.id is things.c.id


def test_an_annotated_table_compiles_and_runs_as_the_table(memory_engine: Engine) -> None:
    annotated = annotate(things, {"mark": Marker()})
    assert str(select(annotated)) == str(select(things))

    metadata.create_all(memory_engine)
    with memory_engine.begin() as conn:
        conn.execute(insert(things), [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}])
        rows = conn.execute(select(annotated).order_by(annotated.c.id)).all()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]


def test_annotating_an_annotated_table_merges_the_values() -> None:
    once = annotate(things, {"a": 1})
    twice = annotate(once, {"b": 2})

    assert dict(annotations_of(twice)) == {"a": 1, "b": 2}
    assert dict(annotations_of(once)) == {"a": 1}


def test_a_statement_selecting_an_annotated_table_has_a_stable_cache_key() -> None:
    # Core's compiled cache must still serve select(Entity): the annotation value (a
    # Mapper, hashable by identity) has to be usable in a cache key
    marker = Marker()
    annotated = annotate(things, {"mark": marker})
    first = select(annotated).where(annotated.c.id == 1)._generate_cache_key()
    second = select(annotated).where(annotated.c.id == 2)._generate_cache_key()

    assert first is not None
    assert first == second


@pytest.mark.parametrize(
    "element",
    [
        pytest.param(things, id="table"),
        pytest.param(things.c.id, id="column"),
        pytest.param(things.c.id == 1, id="expression"),
        pytest.param(text("1"), id="text"),
        pytest.param(select(things).subquery(), id="subquery"),
        pytest.param(object(), id="not-a-clause"),
        pytest.param(None, id="None"),
        pytest.param(7, id="int"),
    ],
)
def test_annotations_of_an_unannotated_thing_is_empty(element: object) -> None:
    found = annotations_of(element)
    assert dict(found) == {}
    assert found.get(ENTITY_ANNOTATION) is None


def test_columns_of_an_annotated_table_are_not_annotated() -> None:
    annotated = annotate(things, {"mark": Marker()})
    assert dict(annotations_of(annotated.c.id)) == {}


# -- raw_columns (Select._raw_columns) -------------------------------------------------


def test_raw_columns_keep_the_annotated_element() -> None:
    marker = Marker()
    annotated = annotate(things, {"mark": marker})
    raw = raw_columns(select(annotated))

    assert len(raw) == 1
    assert raw[0] is annotated, "Select._raw_columns must keep what was passed to select()"
    assert annotations_of(raw[0])["mark"] is marker


def test_raw_columns_keep_order_mixed_with_plain_columns() -> None:
    annotated = annotate(things, {"mark": 1})
    statement = select(others.c.x, annotated, others.c.id)
    raw = raw_columns(statement)

    assert len(raw) == 3
    assert raw[0] is others.c.x
    assert raw[1] is annotated
    assert raw[2] is others.c.id
    assert [dict(annotations_of(e)) for e in raw] == [{}, {"mark": 1}, {}]
    # what loading lines the blocks up with: the table expands to its columns in place
    assert [c.key for c in statement.selected_columns] == ["x", "id", "label", "id"]
    assert list(statement.selected_columns)[1:3] == list(things.c)


def test_raw_columns_keep_two_annotated_tables_in_order() -> None:
    first = annotate(things, {"mark": "things"})
    second = annotate(others, {"mark": "others"})
    raw = raw_columns(select(first, second))

    assert [annotations_of(e)["mark"] for e in raw] == ["things", "others"]


def test_raw_columns_survive_generative_methods() -> None:
    annotated = annotate(things, {"mark": 1})
    statement = (
        select(annotated)
        .where(annotated.c.id > 0)
        .order_by(annotated.c.label)
        .limit(3)
        .add_columns(others.c.x)
        .join_from(annotated, others, annotated.c.id == others.c.id)
    )
    raw = raw_columns(statement)

    assert raw[0] is annotated
    assert raw[1] is others.c.x
    assert len(raw) == 2


def test_raw_columns_of_a_plain_select_are_unannotated() -> None:
    raw = raw_columns(select(things, others.c.x))

    assert raw[0] is things
    assert raw[1] is others.c.x
    assert all(dict(annotations_of(e)) == {} for e in raw)


# -- returning_columns (UpdateBase._returning) -------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: insert(things), lambda: update(things).values(label="x"), lambda: delete(things)],
    ids=["insert", "update", "delete"],
)
def test_returning_columns_keep_the_annotated_element_in_order(
    make: Callable[[], UpdateBase],
) -> None:
    annotated = annotate(things, {"mark": 1})
    statement = make().returning(others.c.x, annotated)
    returning = returning_columns(statement)

    assert len(returning) == 2
    assert returning[0] is others.c.x
    assert returning[1] is annotated, "UpdateBase._returning must keep what returning() got"
    assert dict(annotations_of(returning[1])) == {"mark": 1}
    # what loading lines the blocks up with: the table expands to its columns in place
    assert len(statement.exported_columns) == 1 + len(things.c)


def test_returning_columns_of_dml_without_returning_are_empty() -> None:
    assert len(returning_columns(update(things).values(label="x"))) == 0
    assert len(returning_columns(insert(things))) == 0


# -- object_result (SimpleResultMetaData, IteratorResult(_source_supports_scalars)) ----


def test_bare_scalars_yield_the_very_same_objects() -> None:
    objs = [Loaded(), Loaded(), Loaded()]
    got = object_result(["Loaded"], iter(objs), bare_scalars=True).scalars().all()

    assert len(got) == 3
    assert all(g is o for g, o in zip(got, objs, strict=True)), "scalars() must not copy"


def test_bare_scalars_are_not_unpacked_even_when_they_are_tuples() -> None:
    # pins _source_supports_scalars: without it, scalars() would take row[0]
    objs = [(1, 2), (3, 4)]
    got = object_result(["T"], iter(objs), bare_scalars=True).scalars().all()

    assert got == [(1, 2), (3, 4)]
    assert got[0] is objs[0]


def test_bare_scalars_iterate_lazily_through_scalars() -> None:
    objs = [Loaded(), Loaded()]
    result = object_result(["Loaded"], iter(objs), bare_scalars=True)
    assert [o is e for o, e in zip(result.scalars(), objs, strict=True)] == [True, True]


def test_bare_scalars_as_rows_have_one_column_under_the_key() -> None:
    objs = [Loaded(), Loaded()]
    result = object_result(["Loaded"], iter(objs), bare_scalars=True)
    assert list(result.keys()) == ["Loaded"]
    rows = result.all()

    assert len(rows) == 2
    assert len(rows[0]) == 1
    assert rows[0][0] is objs[0]
    assert rows[1]._mapping["Loaded"] is objs[1]


def test_bare_scalars_one_first_scalar_one() -> None:
    obj = Loaded()
    assert object_result(["L"], iter([obj]), bare_scalars=True).one()[0] is obj
    assert object_result(["L"], iter([obj]), bare_scalars=True).scalar_one() is obj
    assert object_result(["L"], iter([obj]), bare_scalars=True).scalars().one() is obj

    two = [Loaded(), Loaded()]
    assert object_result(["L"], iter(two), bare_scalars=True).scalars().first() is two[0]
    first = object_result(["L"], iter(two), bare_scalars=True).first()
    assert first is not None
    assert first[0] is two[0]
    assert object_result(["L"], iter(two), bare_scalars=True).scalar() is two[0]
    with pytest.raises(MultipleResultsFound):
        object_result(["L"], iter(two), bare_scalars=True).scalars().one()
    with pytest.raises(NoResultFound):
        object_result(["L"], iter([]), bare_scalars=True).scalars().one()
    assert object_result(["L"], iter([]), bare_scalars=True).scalars().first() is None


def test_tuple_rows_carry_the_keys() -> None:
    a, b = Loaded(), Loaded()
    rows = object_result(["Loaded", "x"], iter([(a, 1), (b, 2)])).all()

    assert len(rows) == 2
    assert tuple(rows[0]) == (a, 1)
    assert rows[0][0] is a
    assert dict(rows[0]._mapping) == {"Loaded": a, "x": 1}
    assert rows[1]._mapping["Loaded"] is b
    assert rows[1]._mapping["x"] == 2
    assert rows[1].x == 2


def test_tuple_rows_keys_are_the_keys_given() -> None:
    result = object_result(["Loaded", "x", "y"], iter([]))
    assert list(result.keys()) == ["Loaded", "x", "y"]
    assert result.all() == []


def test_tuple_rows_scalars_give_the_first_column() -> None:
    a, b = Loaded(), Loaded()
    got = object_result(["Loaded", "x"], iter([(a, 1), (b, 2)])).scalars().all()
    assert len(got) == 2
    assert got[0] is a
    assert got[1] is b
    by_name = object_result(["Loaded", "x"], iter([(a, 1), (b, 2)])).scalars("x").all()
    assert by_name == [1, 2]


def test_tuple_rows_one_and_first() -> None:
    a = Loaded()
    one = object_result(["Loaded", "x"], iter([(a, 1)])).one()
    assert one[0] is a
    assert one._mapping["x"] == 1

    first = object_result(["Loaded", "x"], iter([(a, 1), (Loaded(), 2)])).first()
    assert first is not None
    assert first[0] is a
    assert object_result(["Loaded", "x"], iter([])).first() is None
    with pytest.raises(MultipleResultsFound):
        object_result(["Loaded", "x"], iter([(a, 1), (a, 2)])).one()
    with pytest.raises(NoResultFound):
        object_result(["Loaded", "x"], iter([])).one()


def test_tuple_rows_mappings() -> None:
    a = Loaded()
    got = object_result(["Loaded", "x"], iter([(a, 1)])).mappings().all()
    assert len(got) == 1
    assert got[0]["Loaded"] is a
    assert got[0]["x"] == 1


def test_object_result_accepts_any_sequence_of_keys() -> None:
    def rows() -> Iterator[tuple[int, str]]:
        yield (1, "a")

    result = object_result(("n", "s"), rows())
    assert [tuple(r) for r in result] == [(1, "a")]


# -- end to end: entity detection through the wrappers ---------------------------------


def test_an_entity_clause_is_its_table_annotated_with_its_mapper() -> None:
    mapper = inspect_entity(Widget)
    clause = mapper.entity_clause

    assert annotations_of(clause)[ENTITY_ANNOTATION] is mapper
    assert dict(annotations_of(mapper.table)) == {}
    assert list(clause.c) == list(mapper.table.c)
    assert raw_columns(select(Widget))[0] is clause


def test_entity_columns_finds_the_entity_in_select_entity() -> None:
    mapper = inspect_entity(Widget)
    found = entity_columns(select(Widget))

    assert found is not None
    blocks, width = found
    assert width == 3
    assert len(blocks) == 1
    block = blocks[0]
    assert block.mapper is mapper
    assert block.offset == 0
    assert block.width == 3
    assert block.positions == (0, 1, 2)
    assert block.full


def test_entity_columns_ignores_the_plain_table() -> None:
    table = inspect_entity(Widget).table
    assert entity_columns(select(table)) is None
    assert entity_columns(select(table.c.id, table.c.name)) is None
    assert entity_columns(select(Widget.id)) is None


def test_entity_columns_mixed_with_plain_columns() -> None:
    found = entity_columns(select(others.c.x, Widget, others.c.id))

    assert found is not None
    blocks, width = found
    assert width == 5
    assert len(blocks) == 1
    assert blocks[0].offset == 1
    assert blocks[0].width == 3
    assert not blocks[0].full
    assert blocks[0].pk_positions == (1,)


def test_entity_columns_survive_where_and_order_by() -> None:
    found = entity_columns(select(Widget).where(Widget.id > 1).order_by(Widget.name))
    assert found is not None
    assert found[0][0].mapper is inspect_entity(Widget)


def test_execute_loads_entities_through_the_identity_map(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    metadata.create_all(memory_engine)
    imap = IdentityMap()
    with memory_engine.begin() as conn:
        conn.execute(insert(inspect_entity(Widget).table), [{"id": 1, "name": "w", "size": 2}])
        objs = execute(conn, imap, select(Widget)).scalars().all()
        again = execute(conn, imap, select(Widget)).scalars().all()
        mixed = execute(conn, imap, select(Widget, others.c.x).outerjoin(others, text("1=1")))
        rows = mixed.all()
        plain = execute(conn, imap, select(inspect_entity(Widget).table)).all()

    assert len(objs) == 1
    widget = objs[0]
    assert isinstance(widget, Widget)
    assert (widget.id, widget.name, widget.size) == (1, "w", 2)
    assert again[0] is widget, "one object per row identity"
    assert len(rows) == 1
    assert rows[0]._mapping["Widget"] is widget
    assert rows[0]._mapping["x"] is None
    assert [tuple(r) for r in plain] == [(1, "w", 2)], "a plain table gives plain rows"


# -- tables_of (sqlalchemy.sql.util.find_tables) ------------------------------------------


def test_tables_of_names_froms_joins_and_dml_targets() -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, delete, insert, select, update

    from typed_session._core import tables_of

    md = MetaData()
    a = Table("tc_a", md, Column("id", Integer, primary_key=True))
    b = Table("tc_b", md, Column("id", Integer, primary_key=True))
    assert set(tables_of(select(a))) == {a}
    assert set(tables_of(select(a).join(b, a.c.id == b.c.id))) == {a, b}
    assert set(tables_of(insert(a))) == {a}
    assert set(tables_of(update(a).where(a.c.id == select(b.c.id).scalar_subquery()))) == {a, b}
    assert set(tables_of(delete(b))) == {b}
    assert tables_of("not a clause") == []


# -- 8. Executable._with_options / ExecutableOption ------------------------------------------


class _Marker(StatementOption):
    def __init__(self, name: str) -> None:
        self.name = name


def test_statement_options_are_kept_in_order_through_generative_methods() -> None:
    first, second = _Marker("a"), _Marker("b")
    statement = select(things).options(first).where(things.c.id > 1).options(second)
    assert list(statement_options(statement)) == [first, second]


def test_statement_options_of_a_plain_statement_or_non_statement_are_empty() -> None:
    assert list(statement_options(select(things))) == []
    assert list(statement_options(object())) == []


def test_a_statement_option_changes_neither_the_sql_nor_the_cache_key_per_option() -> None:
    plain = select(things)
    one, other = plain.options(_Marker("a")), plain.options(_Marker("b"))
    assert str(one) == str(plain)
    one_key, other_key = one._generate_cache_key(), other._generate_cache_key()
    assert one_key is not None
    assert other_key is not None
    assert one_key.key == other_key.key  # one compiled form serves every option instance


def test_a_statement_option_clones_as_its_own_class() -> None:
    marker = _Marker("a")
    clone = marker._clone()
    assert type(clone) is _Marker
    assert clone is not marker


# -- 9. GenerativeSelect._limit_clause / _offset_clause ----------------------------------------


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (select(things), False),
        (select(things).limit(5), True),
        (select(things).offset(2), True),
        (select(things).order_by(things.c.id).limit(1).offset(1), True),
        (select(things).where(things.c.id > 1), False),
    ],
)
def test_has_limit(statement: Select[Any], expected: bool) -> None:
    assert has_limit(statement) is expected


# -- 9. sqlalchemy.util.concurrency: greenlet_spawn / await_ / in_greenlet -------------------


def test_greenlet_spawn_runs_sync_code_that_awaits_and_returns_its_value() -> None:
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return 2 * n

    def sync_code(n: int, *, plus: int) -> tuple[bool, int]:
        return in_greenlet(), await_(double(n)) + plus

    assert asyncio.run(greenlet_spawn(sync_code, 4, plus=1)) == (True, 9)


def test_greenlet_spawn_raises_what_the_sync_code_raises() -> None:
    async def fail() -> None:
        raise KeyError("from the awaitable")

    def sync_code() -> None:
        await_(fail())

    with pytest.raises(KeyError, match="from the awaitable"):
        asyncio.run(greenlet_spawn(sync_code))


def test_outside_a_greenlet_in_greenlet_is_false_and_await_raises_missing_greenlet() -> None:
    async def nothing() -> None:
        return None

    async def outside() -> bool:
        return in_greenlet()

    assert not in_greenlet()
    assert asyncio.run(outside()) is False
    with pytest.raises(MissingGreenlet):
        await_(nothing())


# -- locks_rows (GenerativeSelect._for_update_arg) -----------------------------------------


def test_locks_rows_tells_a_select_for_update_apart() -> None:
    from typed_session._core import locks_rows

    assert locks_rows(select(things).with_for_update())
    assert locks_rows(select(things).with_for_update(read=True, nowait=True))
    assert not locks_rows(select(things))
    assert not locks_rows(things.update())
    assert not locks_rows("SELECT 1 FOR UPDATE")
