"""Bulk operations as a user writes them: mappings typed by a ``TypedDict`` of the entity."""

from __future__ import annotations

from typing import TypedDict, assert_type

from sqlalchemy import Engine

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="tcb_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


class ItemRow(TypedDict, total=False):
    id: int
    name: str


def bulk(session: Session[Engine]) -> None:
    rows: list[ItemRow] = [{"name": "a"}, {"name": "b"}]
    assert_type(session.bulk_insert_mappings(Item, rows, return_defaults=True), None)
    session.bulk_update_mappings(Item, [{"id": 1, "name": "c"}])
    session.bulk_save_objects([Item(name="d")], preserve_order=False)
    bad: list[ItemRow] = [{"nmae": "a"}]  # type: ignore[typeddict-unknown-key]  # a typo
    session.bulk_insert_mappings(Item, bad, True)  # type: ignore[call-arg]  # flags are keyword-only
    session.bulk_save_objects([Item(name="e")], True)  # type: ignore[call-arg]  # keyword-only
