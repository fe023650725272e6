"""Relationship workloads: a three-level tree in one flush, and a selectinload read.

typed_session against SQLAlchemy's ORM and Core, interleaved in one run (the order of the
implementations rotates every repetition), medians of the repetitions, GC on; ratios are
to Core. ``parent_child`` (parents with ten children appended through the collection) is
``../shared/bench/peers.py``'s, run with ``bench/peers_plugin.py``.

* ``tree``: ROOTS roots x 10 children x 10 grandchildren of one self-referential table,
  built through the ``parent`` / ``children`` relationship and written by one commit
  (Core: one INSERT ... RETURNING per level, keys copied by hand).
* ``selectin``: every parent with its ten children, in a fresh session
  (``select(Parent).options(selectinload(Parent.children))``; Core: the parents, then
  the children ``WHERE parent_id IN (...)``, grouped in Python), every child touched.

Usage: PYTHONPATH=. python bench/relationships.py [--url URL] [--roots N] [--reps R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

import typed_session as ts

FANOUT = 10

# -- typed_session --------------------------------------------------------------------------
ts_reg = ts.Registry()


@ts.entity(ts_reg, table="bn_node")
class TsNode:
    id: ts.Mapped[int] = ts.column(primary_key=True, init=False)
    name: ts.Mapped[str] = ts.column(sa.String(50))
    parent_id: ts.Mapped[int | None] = ts.column(foreign_key="bn_node.id", default=None, init=False)
    parent: ts.Mapped[TsNode | None] = ts.relationship(default=None, back_populates="children")
    children: ts.Mapped[list[TsNode]] = ts.relationship(
        default_factory=list, back_populates="parent"
    )


# -- SQLAlchemy ORM -------------------------------------------------------------------------
class Base(orm.DeclarativeBase):
    pass


class OrmNode(Base):
    __tablename__ = "bn_node"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(50))
    parent_id: orm.Mapped[int | None] = orm.mapped_column(sa.ForeignKey("bn_node.id"))
    parent: orm.Mapped[OrmNode | None] = orm.relationship(
        back_populates="children", remote_side="OrmNode.id"
    )
    children: orm.Mapped[list[OrmNode]] = orm.relationship(back_populates="parent")


NODE = ts_reg.metadata.tables["bn_node"]


def reset(engine: sa.Engine) -> None:
    ts_reg.metadata.drop_all(engine)
    ts_reg.metadata.create_all(engine)


def tree_names(roots: int) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    return [
        (
            f"r{r}",
            [(f"r{r}c{c}", [f"r{r}c{c}g{g}" for g in range(FANOUT)]) for c in range(FANOUT)],
        )
        for r in range(roots)
    ]


def ts_tree(engine: sa.Engine, roots: int) -> None:
    with ts.Session(engine) as s:
        made = []
        for root_name, kids in tree_names(roots):
            root = TsNode(name=root_name)
            for kid_name, grandkids in kids:
                kid = TsNode(name=kid_name, parent=root)
                for g in grandkids:
                    TsNode(name=g, parent=kid)
            made.append(root)
        s.add_all(made)
        s.commit()


def orm_tree(engine: sa.Engine, roots: int) -> None:
    with orm.Session(engine) as s:
        made = []
        for root_name, kids in tree_names(roots):
            root = OrmNode(name=root_name)
            for kid_name, grandkids in kids:
                kid = OrmNode(name=kid_name, parent=root)
                for g in grandkids:
                    OrmNode(name=g, parent=kid)
            made.append(root)
        s.add_all(made)
        s.commit()


def core_tree(engine: sa.Engine, roots: int) -> None:
    names = tree_names(roots)
    insert = sa.insert(NODE).returning(NODE.c.id, sort_by_parameter_order=True)
    with engine.begin() as conn:
        root_ids = conn.execute(insert, [{"name": r, "parent_id": None} for r, _ in names])
        kids = [
            {"name": k, "parent_id": rid}
            for rid, (_, ks) in zip(root_ids.scalars(), names, strict=True)
            for k, _ in ks
        ]
        kid_ids = conn.execute(insert, kids).scalars().all()
        grand = [g for _, ks in names for _, gs in ks for g in gs]
        conn.execute(
            sa.insert(NODE),
            [{"name": g, "parent_id": kid_ids[i // FANOUT]} for i, g in enumerate(grand)],
        )


def ts_selectin(engine: sa.Engine) -> int:
    with ts.Session(engine) as s:
        stmt = (
            sa.select(TsNode)
            .where(TsNode.parent_id.is_not(None))
            .options(ts.selectinload(TsNode.children))
        )
        return sum(len(n.children) for n in s.scalars(stmt))


def orm_selectin(engine: sa.Engine) -> int:
    with orm.Session(engine) as s:
        stmt = (
            sa.select(OrmNode)
            .where(OrmNode.parent_id.is_not(None))
            .options(orm.selectinload(OrmNode.children))
        )
        return sum(len(n.children) for n in s.scalars(stmt))


def core_selectin(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        parents = conn.execute(sa.select(NODE).where(NODE.c.parent_id.is_not(None))).all()
        by_parent: dict[int, list[Any]] = {p.id: [] for p in parents}
        ids = list(by_parent)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for row in conn.execute(sa.select(NODE).where(NODE.c.parent_id.in_(chunk))):
                by_parent[row.parent_id].append(row)
        return sum(len(v) for v in by_parent.values())


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="sqlite://")
    parser.add_argument("--roots", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    engine = sa.create_engine(args.url)
    impls = {
        "typed_session": (ts_tree, ts_selectin),
        "sqlalchemy_orm": (orm_tree, orm_selectin),
        "core": (core_tree, core_selectin),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    order = list(impls)
    for rep in range(args.reps):
        rotated = order[rep % len(order) :] + order[: rep % len(order)]
        for name in rotated:
            tree, selectin = impls[name]
            reset(engine)
            samples.setdefault(("tree", name), []).append(
                timed(lambda tree=tree: tree(engine, args.roots))
            )
            samples.setdefault(("selectin", name), []).append(
                timed(lambda selectin=selectin: selectin(engine))
            )
            with engine.connect() as conn:
                count = conn.execute(sa.select(sa.func.count()).select_from(NODE)).scalar()
            assert count == args.roots * (1 + FANOUT + FANOUT * FANOUT), (name, count)
    nodes = args.roots * (1 + FANOUT + FANOUT * FANOUT)
    print(f"# {engine.dialect.name}, {nodes} nodes, median of {args.reps}, GC on")
    print("| workload | typed_session | SQLAlchemy ORM | Core | ts / Core | ORM / Core |")
    print("|---|---|---|---|---|---|")
    for workload in ("tree", "selectin"):
        med = {n: statistics.median(samples[(workload, n)]) for n in impls}
        core = med["core"]
        print(
            f"| {workload} | {med['typed_session'] * 1000:.1f} ms | "
            f"{med['sqlalchemy_orm'] * 1000:.1f} ms | {core * 1000:.1f} ms | "
            f"{med['typed_session'] / core:.2f}x | {med['sqlalchemy_orm'] / core:.2f}x |"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
