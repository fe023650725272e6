"""Edges of bulk operations, version columns and validation that need a dialect's help."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, String, select, update
from sqlalchemy.exc import SAWarning
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from typed_session import (
    InvalidValueError,
    Mapped,
    ObjectStateError,
    Registry,
    Session,
    column,
    entity,
    inspect_entity,
)

reg = Registry()


@entity(reg, table="oe_items", version_column="version")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(20))
    code: Mapped[str] = column(String(10), server_default="srv", init=False)
    version: Mapped[int] = column(init=False)


class Point(TypedDict):
    x: int
    y: int


@entity(reg, table="oe_shapes", validate=True)
class Shape:
    id: Mapped[int] = column(primary_key=True, init=False)
    point: Mapped[Point] = column(sa.JSON)


@pytest.fixture
def session(memory_engine: Engine) -> Session[Engine]:
    reg.create_all(memory_engine)
    return Session(memory_engine)


def test_return_defaults_without_ordered_returning_inserts_row_by_row(
    session: Session[Engine], memory_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = memory_engine.dialect
    monkeypatch.setattr(dialect, "insert_executemany_returning_sort_by_parameter_order", False)
    rows: list[dict[str, object]] = [{"name": "a"}, {"name": "b"}]
    session.bulk_insert_mappings(Item, rows, return_defaults=True)
    assert [(r["id"], r["code"], r["version"]) for r in rows] == [(1, "srv", 1), (2, "srv", 1)]


def test_a_dialect_without_rowcount_cannot_verify_versions_and_says_so(
    session: Session[Engine], memory_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = Item(name="a")
    session.add(item)
    session.commit()
    assert item.version == 1
    session.execute(update(inspect_entity(Item).table).values(version=5))  # another writer
    monkeypatch.setattr(memory_engine.dialect, "supports_sane_rowcount", False)
    item.name = "b"
    with pytest.warns(SAWarning, match="versioning cannot be verified"):
        session.flush()


def test_save_objects_refuses_an_object_whose_delete_was_flushed(
    session: Session[Engine],
) -> None:
    item = Item(name="a")
    session.add(item)
    session.flush()
    session.delete(item)
    session.flush()
    with pytest.raises(ObjectStateError, match="its DELETE was flushed, so it has no row"):
        session.bulk_save_objects([item])


def test_a_typed_dict_annotation_is_validated_with_its_own_config(
    session: Session[Engine],
) -> None:
    shape = Shape(point={"x": 1, "y": 2})
    with pytest.raises(InvalidValueError, match=r"Shape\.point"):
        shape.point = {"x": 1}  # type: ignore[typeddict-item]  # the point of the test
    session.add(shape)
    session.commit()
    assert session.scalars(select(Shape.point)).one() == {"x": 1, "y": 2}
