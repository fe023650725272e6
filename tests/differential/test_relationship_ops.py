"""Differential test of relationships: random parent/child operations on both ORMs.

The same seeded sequences of operations — new parents and children, appends, removals,
``child.parent = p``, deleting parents (``all, delete-orphan``), flush, commit, rollback,
expire_all — run on typed_session and on SQLAlchemy's ORM (the oracle), each on its own
in-memory SQLite database with foreign keys enforced; the committed rows must be the
same. ``child.parent = None`` is left out: with the parent's collection unloaded,
SQLAlchemy does not see the child leave it, where typed_session deletes the orphan (the
deliberate difference in ``docs/migration.md``).
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

import typed_session as ts

ts_reg = ts.Registry()


@ts.entity(ts_reg, table="d_parent")
class TsParent:
    id: ts.Mapped[int] = ts.column(primary_key=True, autoincrement=False)
    children: ts.Mapped[list[TsChild]] = ts.relationship(
        default_factory=list, back_populates="parent", cascade="all, delete-orphan"
    )


@ts.entity(ts_reg, table="d_child")
class TsChild:
    id: ts.Mapped[int] = ts.column(primary_key=True, autoincrement=False)
    parent_id: ts.Mapped[int | None] = ts.column(
        foreign_key="d_parent.id", default=None, init=False
    )
    parent: ts.Mapped[TsParent | None] = ts.relationship(default=None, back_populates="children")


class Base(orm.DeclarativeBase):
    pass


class OrmParent(Base):
    __tablename__ = "d_parent"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    children: orm.Mapped[list[OrmChild]] = orm.relationship(
        back_populates="parent", cascade="all, delete-orphan"
    )


class OrmChild(Base):
    __tablename__ = "d_child"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    parent_id: orm.Mapped[int | None] = orm.mapped_column(sa.ForeignKey("d_parent.id"))
    parent: orm.Mapped[OrmParent | None] = orm.relationship(back_populates="children")


OPS = ("new_parent", "new_child", "append", "remove", "set_parent", "delete_parent")
ENDS = ("commit", "flush", "rollback", "expire_all")


def _foreign_keys_on(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _play(ops: list[tuple[str, int, int]], *, typed: bool) -> tuple[list[Any], list[Any]]:
    engine = sa.create_engine("sqlite://")
    sa.event.listen(engine, "connect", _foreign_keys_on)
    ts_reg.metadata.create_all(engine)
    parent_cls: Any = TsParent if typed else OrmParent
    child_cls: Any = TsChild if typed else OrmChild
    session: Any = ts.Session(engine) if typed else orm.Session(engine)
    parents: dict[int, Any] = {}
    children: dict[int, Any] = {}
    for op, a, b in ops:
        try:
            if op == "new_parent" and a not in parents:
                parents[a] = parent_cls(id=a)
                session.add(parents[a])
            elif op == "new_child" and b not in children and a in parents:
                children[b] = child_cls(id=b)
                parents[a].children.append(children[b])
            elif op == "append" and a in parents and b in children:
                parents[a].children.append(children[b])
            elif op == "remove" and a in parents and b in children:
                if children[b] in parents[a].children:
                    parents[a].children.remove(children[b])
            elif op == "set_parent" and a in parents and b in children:
                children[b].parent = parents[a]
            elif op == "delete_parent" and a in parents:
                session.delete(parents.pop(a))
            elif op in ENDS:
                getattr(session, op)()
        except sa.exc.SQLAlchemyError:
            session.rollback()
    try:
        session.commit()
    except sa.exc.SQLAlchemyError:
        session.rollback()
    session.close()
    with engine.connect() as conn:
        rows = (
            sorted(conn.execute(sa.text("select id from d_parent")).all()),
            sorted(conn.execute(sa.text("select id, parent_id from d_child")).all()),
        )
    engine.dispose()
    return rows


@pytest.mark.parametrize("seed", range(150))
def test_same_rows_as_sqlalchemy(seed: int) -> None:
    rnd = random.Random(seed)
    ops = [
        (rnd.choice(OPS + ENDS), rnd.randint(1, 4), rnd.randint(1, 6))
        for _ in range(rnd.randint(3, 25))
    ]
    typed = _play(ops, typed=True)
    with warnings.catch_warnings():  # the oracle's warnings (objects left out of a flush)
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        oracle = _play(ops, typed=False)
    assert typed == oracle, ops
