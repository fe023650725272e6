"""Bulk operations: ``bulk_save_objects``, ``bulk_insert_mappings``, ``bulk_update_mappings``."""

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, TypedDict

import pytest
from sqlalchemy import Engine, String, select
from sqlalchemy.exc import ArgumentError, PendingRollbackError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import (
    db_insert,
    db_rows,
    lifecycle,
    recreate_tables,
    set_clause_columns,
    sql_for,
)
from typed_session import (
    Mapped,
    ObjectState,
    ObjectStateError,
    Registry,
    Session,
    StaleDataError,
    column,
    entity,
)

reg = Registry()


@entity(reg, table="bk_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(50))
    qty: Mapped[int] = column(default=0)
    note: Mapped[str | None] = column(default=None)
    code: Mapped[str] = column(String(10), server_default="srv", init=False)


class ItemRow(TypedDict, total=False):
    id: int
    name: str
    qty: int
    note: str | None


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    return db_rows(
        engine, select(Item.id, Item.name, Item.qty, Item.note, Item.code).order_by(Item.id)
    )


# -- bulk_insert_mappings ----------------------------------------------------------------


def test_insert_mappings_sends_one_batch_per_run_of_keys(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    batch: list[ItemRow] = [
        {"id": 1, "name": "a", "qty": 3},
        {"id": 2, "name": "b", "qty": 4},
        {"id": 3, "name": "c"},  # another set of keys: another statement
        {"id": 4, "name": "d", "note": None},  # None left out: the same keys as #3
    ]
    session.bulk_insert_mappings(Item, batch)
    assert len(sql_for(capture, "INSERT", Item)) == 2
    session.commit()
    assert rows(engine) == [
        (1, "a", 3, None, "srv"),
        (2, "b", 4, None, "srv"),
        (3, "c", 0, None, "srv"),
        (4, "d", 0, None, "srv"),
    ]
    assert len(session.identity_map) == 0  # nothing was put in the identity map
    assert session.get(Item, 1) is not None


def test_render_nulls_sends_none_and_batches_the_rows_together(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    session.bulk_insert_mappings(
        Item,
        [{"id": 1, "name": "a", "note": "n"}, {"id": 2, "name": "b", "note": None}],
        render_nulls=True,
    )
    assert len(sql_for(capture, "INSERT", Item)) == 1
    session.commit()
    assert [r[3] for r in rows(engine)] == ["n", None]


def test_return_defaults_writes_generated_values_into_the_mappings(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    batch: list[dict[str, Any]] = [{"name": f"n{i}"} for i in range(5)]
    session.bulk_insert_mappings(Item, batch, return_defaults=True)
    assert len(sql_for(capture, "INSERT", Item)) == (5 if engine.dialect.name == "sqlite" else 1)
    session.commit()
    assert [(m["id"], m["name"], m["code"]) for m in batch] == [
        (r[0], r[1], "srv") for r in rows(engine)
    ]
    assert len({m["id"] for m in batch}) == 5


def test_insert_mappings_refuse_unknown_keys_before_any_sql(
    session: Session[Engine], capture: SQLCapture
) -> None:
    with pytest.raises(ArgumentError, match=r"mapping #1 has key\(s\) \['nmae'\], which are not"):
        session.bulk_insert_mappings(Item, [{"name": "a"}, {"nmae": "b"}])
    assert capture.statements == []
    with pytest.raises(ArgumentError, match="mapping #0 is a mappingproxy, which cannot take"):
        session.bulk_insert_mappings(Item, [MappingProxyType({"name": "a"})], return_defaults=True)
    assert capture.statements == []
    assert session.is_active


# -- bulk_update_mappings ----------------------------------------------------------------


def test_update_mappings_set_what_each_mapping_holds(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(engine, Item, [{"id": i, "name": f"n{i}"} for i in (1, 2, 3)])
    session.bulk_update_mappings(
        Item,
        [{"id": 1, "qty": 5}, {"id": 2, "qty": 6}, {"id": 3, "name": "x"}, {"id": 2}],
    )
    updates = sql_for(capture, "UPDATE", Item)
    assert [set_clause_columns(u) for u in updates] == [["qty"], ["name"]]
    session.commit()
    assert [r[:3] for r in rows(engine)] == [(1, "n1", 5), (2, "n2", 6), (3, "x", 0)]


def test_update_mappings_need_the_primary_key(
    session: Session[Engine], capture: SQLCapture
) -> None:
    with pytest.raises(
        ArgumentError, match=r"mapping #0 lacks primary-key attribute\(s\) \['id'\]"
    ):
        session.bulk_update_mappings(Item, [{"name": "x"}])
    with pytest.raises(ArgumentError, match=r"bulk_update_mappings\(Item\): mapping #1 has key"):
        session.bulk_update_mappings(Item, [{"id": 1, "qty": 1}, {"id": 2, "qyt": 1}])
    assert capture.statements == []


def test_a_missing_row_fails_the_whole_bulk_operation(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Item, [{"id": 1, "name": "a"}])
    session.bulk_insert_mappings(Item, [{"id": 2, "name": "b"}])
    with pytest.raises(StaleDataError, match="expected to update 2 row"):
        session.bulk_update_mappings(Item, [{"id": 1, "qty": 1}, {"id": 99, "qty": 1}])
    with pytest.raises(PendingRollbackError):
        session.bulk_update_mappings(Item, [{"id": 1, "qty": 2}])
    session.rollback()
    assert rows(engine) == [(1, "a", 0, None, "srv")]  # the bulk INSERT went too


# -- bulk_save_objects -------------------------------------------------------------------


def test_save_objects_inserts_without_attaching(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    items = [Item(name="a"), Item(name="b", qty=2)]
    session.bulk_save_objects(items)
    assert len(sql_for(capture, "INSERT", Item)) == 1  # qty has a default: same columns
    assert all(lifecycle(i) is ObjectState.TRANSIENT for i in items)
    assert "id" not in items[0].__dict__
    assert not session.new
    session.commit()
    assert [r[1:3] for r in rows(engine)] == [("a", 0), ("b", 2)]


def test_save_objects_with_return_defaults_makes_them_detached(
    engine: Engine, session: Session[Engine]
) -> None:
    items = [Item(name="a"), Item(name="b")]
    session.bulk_save_objects(items, return_defaults=True)
    session.commit()
    assert [(i.id, i.code) for i in items] == [(r[0], "srv") for r in rows(engine)]
    assert all(lifecycle(i) is ObjectState.DETACHED for i in items)
    items[0].qty = 9  # detached, with a key: saved again, it is an UPDATE
    session.bulk_save_objects(items)
    session.commit()
    assert [r[2] for r in rows(engine)] == [9, 0]


def loaded_and_detached(sessions: SessionFactory, engine: Engine) -> list[Item]:
    # keys generated, so that the database goes on from them
    db_insert(engine, Item, [{"name": f"n{i}", "qty": i} for i in (1, 2, 3)])
    loader = sessions(expire_on_commit=False)
    items = list(loader.scalars(select(Item).order_by(Item.id)))
    loader.close()
    return items


def test_save_objects_updates_only_what_changed(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    one, two, three = loaded_and_detached(sessions, engine)
    one.qty, two.qty, three.note = 10, 20, "x"
    session = sessions()
    capture.clear()
    session.bulk_save_objects([one, two, three])
    updates = sql_for(capture, "UPDATE", Item)
    assert [set_clause_columns(u) for u in updates] == [["qty"], ["note"]]
    assert session.identity_map.keys() == []  # not attached
    session.commit()
    assert [(r[2], r[3]) for r in rows(engine)] == [(10, None), (20, None), (3, "x")]


def test_save_objects_can_update_every_loaded_attribute(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    one, two, _ = loaded_and_detached(sessions, engine)
    one.qty = 10
    session = sessions()
    capture.clear()
    session.bulk_save_objects([one, two], update_changed_only=False)
    (update,) = sql_for(capture, "UPDATE", Item)
    assert sorted(set_clause_columns(update)) == ["code", "name", "note", "qty"]
    session.commit()
    assert [r[2] for r in rows(engine)] == [10, 2, 3]


def test_save_objects_groups_by_class_and_kind_unless_order_is_kept(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    one, two, _ = loaded_and_detached(sessions, engine)
    one.qty, two.qty = 10, 20
    mixed = [one, Item(name="a"), two, Item(name="b")]
    session = sessions()
    capture.clear()
    session.bulk_save_objects(mixed)
    assert len(capture.matching("INSERT")) == 2
    assert len(capture.matching("UPDATE")) == 2
    session.rollback()
    one.qty, two.qty = 11, 21
    capture.clear()
    session.bulk_save_objects(mixed, preserve_order=False)
    assert len(capture.matching("INSERT")) == 1
    assert len(capture.matching("UPDATE")) == 1
    session.commit()
    assert [r[1:3] for r in rows(engine)] == [("n1", 11), ("n2", 21), ("n3", 3), ("a", 0), ("b", 0)]


def test_save_objects_refuses_a_pending_object_before_any_sql(
    session: Session[Engine], capture: SQLCapture
) -> None:
    pending = Item(name="p")
    session.add(pending)
    with pytest.raises(ObjectStateError, match="it is pending in a session, whose flush"):
        session.bulk_save_objects([Item(name="q"), pending])
    assert capture.statements == []
