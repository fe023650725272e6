"""Two cases a review of the flush's allocation cuts found, kept as regressions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, select

from typed_session import Mapped, Registry, Session, column, entity, relationship

reg = Registry()


@entity(reg, table="rc_parents")
class Parent:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(default="p")
    children: Mapped[list[Child]] = relationship(
        back_populates="parent", default_factory=list, post_update=True
    )


@entity(reg, table="rc_children")
class Child:
    id: Mapped[int] = column(primary_key=True, init=False)
    parent_id: Mapped[int | None] = column(foreign_key="rc_parents.id", default=None)
    parent: Mapped[Parent | None] = relationship(
        back_populates="children", default=None, post_update=True
    )


def test_a_link_seen_from_both_sides_is_written_once(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    with Session(memory_engine) as s:
        s.add(Child())
        s.commit()
    updates: list[Any] = []

    def record(_c: object, _cu: object, statement: str, params: Any, *_: object) -> None:
        if statement.startswith("UPDATE rc_children"):
            updates.append(params)

    event.listen(memory_engine, "before_cursor_execute", record)
    try:
        with Session(memory_engine) as s:
            child = s.scalars(select(Child)).one()
            parent = Parent(name="new")
            s.add(parent)
            parent.children.append(child)  # both sides now say it: one link
            s.flush()
            assert child.parent_id == parent.id
    finally:
        event.remove(memory_engine, "before_cursor_execute", record)
    assert len(updates) == 1
    assert not isinstance(updates[0], list)  # one row, not an executemany of duplicates


def test_a_persistent_child_moved_back_is_listed_once(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    with Session(memory_engine) as s:
        first, second = Parent(name="1"), Parent(name="2")
        s.add_all([first, second])
        s.flush()
        s.add(Child(parent_id=second.id))
        s.commit()
    with Session(memory_engine, autoflush=False) as s:
        first = s.scalars(select(Parent).where(Parent.name == "1")).one()
        second = s.scalars(select(Parent).where(Parent.name == "2")).one()
        child = s.scalars(select(Child)).one()
        child.parent = first
        assert [c.id for c in second.children] == [child.id]  # loaded before the flush
        child.parent = second
        assert second.children == [child]
