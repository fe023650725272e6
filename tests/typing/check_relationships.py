"""Relationships as a user writes them: collections, many-to-one, options, joins."""

from __future__ import annotations

from typing import assert_type

from sqlalchemy import ColumnElement, Engine, Select, select

from typed_session import (
    LoaderOption,
    Mapped,
    Registry,
    Session,
    column,
    entity,
    join_on,
    joinedload,
    raiseload,
    relationship,
    selectinload,
)

reg = Registry()


@entity(reg, table="tr_parent")
class Parent:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    children: Mapped[list[Child]] = relationship(
        default_factory=list, back_populates=lambda: Child.parent
    )
    tags: Mapped[set[Tag]] = relationship(default_factory=set)


@entity(reg, table="tr_child")
class Child:
    id: Mapped[int] = column(primary_key=True, init=False)
    parent_id: Mapped[int | None] = column(foreign_key="tr_parent.id", default=None)
    parent: Mapped[Parent | None] = relationship(default=None, back_populates="children")
    grandchildren: Mapped[list[Grandchild]] = relationship(default_factory=list)


@entity(reg, table="tr_grandchild")
class Grandchild:
    id: Mapped[int] = column(primary_key=True, init=False)
    child_id: Mapped[int | None] = column(foreign_key="tr_child.id", default=None)


@entity(reg, table="tr_tag")
class Tag:
    id: Mapped[int] = column(primary_key=True, init=False)


def instances() -> None:
    parent = Parent(name="p", children=[Child()])
    assert_type(parent.children, list[Child])
    assert_type(parent.tags, set[Tag])
    child = Child(parent=parent)
    assert_type(child.parent, Parent | None)
    parent.children.append(child)
    child.parent = None
    Parent(name="p", children=[parent])  # type: ignore[list-item]  # a Parent is no Child
    child.parent = child  # type: ignore[assignment]  # a Child is no Parent


def options(session: Session[Engine]) -> None:
    option = selectinload(Parent.children)
    assert_type(option, LoaderOption[Child])
    assert_type(option.selectinload(Child.grandchildren), LoaderOption[Grandchild])
    assert_type(selectinload(Child.parent), LoaderOption[Parent])
    assert_type(raiseload(Parent.tags), LoaderOption[Tag])
    assert_type(joinedload(Child.parent), LoaderOption[Parent])
    assert_type(
        joinedload(Parent.children).selectinload(Child.grandchildren), LoaderOption[Grandchild]
    )
    assert_type(join_on(Parent.children), ColumnElement[bool])
    statement = select(Parent).options(option).join(Parent.children)
    assert_type(statement, Select[Parent])
    for p in session.scalars(statement):
        assert_type(p.children[0], Child)


def merging(session: Session[Engine], parent: Parent) -> None:
    assert_type(session.merge(parent), Parent)
    assert_type(session.merge(parent, load=False), Parent)
    assert_type(session.merge_all([parent]), list[Parent])
    session.delete_all([parent])
