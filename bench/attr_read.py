"""Micro-benchmark of typed_session's hot paths against plain Python and SQLAlchemy's ORM.

Measures, in CPython, with ``timeit`` (minimum of 5 repeats of 2,000,000 operations, as
``../shared/bench/spikes/attr_access.py`` does):

* attribute reads: a plain instance attribute; a loaded typed_session attribute; a loaded
  SQLAlchemy ORM attribute (both objects persistent, loaded through a session on
  ``sqlite://``);
* attribute writes on the same objects (typed_session and the ORM record history);
* ``session.get()`` hitting the identity map: typed_session, the ORM, a plain dict lookup;
* identity-map lookup with the key built on every lookup (STYLE.md asks for this before
  choosing a record type on a hot path): typed_session's ``IdentityKey`` (a frozen, slotted
  dataclass), a ``NamedTuple``, a plain tuple, and the bare primary key in a per-entity
  dict (what typed_session's ``IdentityMap`` uses inside);
* bytes retained per loaded object (tracemalloc, 20,000 rows): typed_session, the ORM,
  Core ``Row``.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python bench/attr_read.py
[--json PATH] [--md PATH] [--number N]``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy import orm as sa_orm

from typed_session import IdentityKey, Mapped, Registry, Session, column, entity

NUMBER = 2_000_000
REPEAT = 5
MEMORY_ROWS = 20_000

# -- typed_session -------------------------------------------------------------------------
TS_META = MetaData()
TS_TABLE = Table(
    "customer",
    TS_META,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", String(255), nullable=False),
)
ts_reg = Registry(TS_META)


@entity(ts_reg, table=TS_TABLE)
class TsCustomer:
    id: Mapped[int] = column(init=False)
    name: Mapped[str]
    description: Mapped[str]


# -- SQLAlchemy ORM (the peer) -------------------------------------------------------------
class OrmBase(sa_orm.DeclarativeBase):
    pass


class OrmCustomer(OrmBase):
    __tablename__ = "customer"
    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(String(255))
    description: sa_orm.Mapped[str] = sa_orm.mapped_column(String(255))


# -- plain Python and identity keys --------------------------------------------------------
class Plain:
    def __init__(self) -> None:
        self.name = "x"


class TupleKey(NamedTuple):
    entity: type
    pk: tuple[Any, ...]
    token: Any


def _fill(engine: sa.Engine, metadata: MetaData, table: Table, n: int) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(table),
            [
                {"name": f"customer name {i}", "description": f"customer description {i}"}
                for i in range(n)
            ],
        )


class Row(NamedTuple):
    section: str
    label: str
    value: float
    unit: str
    baseline: str | None


def bench(stmt: str, setup: str, g: dict[str, Any], number: int) -> float:
    """Minimum over REPEAT runs, in ns per operation."""
    return min(timeit.repeat(stmt, setup, number=number, repeat=REPEAT, globals=g)) / number * 1e9


def bytes_per_object(load: Callable[[], Any], release: Callable[[], None], n: int) -> float:
    load()  # warm every cache (compiled SQL, result metadata, ...)
    release()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = load()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        assert len(held) == n, len(held)
        del held
        release()
    finally:
        tracemalloc.stop()
    gc.collect()
    return (after - before) / n


def run(number: int) -> list[Row]:
    rows: list[Row] = []

    # persistent, loaded objects, sessions kept alive in the globals below
    ts_engine = create_engine("sqlite://")
    _fill(ts_engine, TS_META, TS_TABLE, 1000)
    ts_session = Session(ts_engine)
    ts_obj = ts_session.get(TsCustomer, 1)
    assert ts_obj is not None
    orm_engine = create_engine("sqlite://")
    _fill(orm_engine, OrmBase.metadata, OrmCustomer.__table__, 1000)  # type: ignore[arg-type]
    orm_session = sa_orm.Session(orm_engine)
    orm_obj = orm_session.get(OrmCustomer, 1)
    assert orm_obj is not None
    # a write-ready object of each: the first write (history recorded) happens in timeit's
    # first iteration, the others are "already modified" writes, as in the spike
    ts_w = ts_session.get(TsCustomer, 2)
    orm_w = orm_session.get(OrmCustomer, 2)
    assert ts_w is not None
    assert orm_w is not None
    plain_map = {i: Plain() for i in range(1000)}
    pk_map: dict[type, dict[int, int]] = {TsCustomer: {i: i for i in range(1000)}}
    g: dict[str, Any] = {
        "Plain": Plain,
        "ts_obj": ts_obj,
        "orm_obj": orm_obj,
        "ts_w": ts_w,
        "orm_w": orm_w,
        "ts_get": ts_session.get,
        "orm_get": orm_session.get,
        "TsCustomer": TsCustomer,
        "OrmCustomer": OrmCustomer,
        "plain_map": plain_map,
        "pk_map": pk_map,
        "IdentityKey": IdentityKey,
        "TupleKey": TupleKey,
        "C": TsCustomer,
    }

    def add(
        section: str, label: str, stmt: str, setup: str = "pass", baseline: str | None = None
    ) -> None:
        ns = bench(stmt, setup, g, number)
        rows.append(Row(section, label, ns, "ns", baseline))
        print(f"  {section:10s} {label:62s} {ns:8.1f} ns", file=sys.stderr, flush=True)

    # sanity: the objects really are loaded and persistent
    assert "name" in ts_obj.__dict__
    assert ts_obj in ts_session.identity_map.values()
    add("read", "plain instance attribute", "o.name", "o = Plain()")
    add(
        "read",
        "typed_session, loaded attribute",
        "ts_obj.name",
        baseline="plain instance attribute",
    )
    add(
        "read",
        "SQLAlchemy ORM, loaded attribute",
        "orm_obj.name",
        baseline="plain instance attribute",
    )
    add("write", "plain instance attribute", "o.name = 'y'", "o = Plain()")
    add(
        "write",
        "typed_session, persistent object (history recorded)",
        "ts_w.name = 'y'",
        baseline="plain instance attribute",
    )
    add(
        "write",
        "SQLAlchemy ORM, persistent object",
        "orm_w.name = 'y'",
        baseline="plain instance attribute",
    )
    assert ts_w in ts_session.dirty
    assert orm_w in orm_session.dirty
    add("get", "plain dict lookup `m[1]`", "plain_map[1]")
    add(
        "get",
        "typed_session `session.get(C, 1)`, identity-map hit",
        "ts_get(TsCustomer, 1)",
        baseline="plain dict lookup `m[1]`",
    )
    add(
        "get",
        "SQLAlchemy ORM `session.get(C, 1)`, identity-map hit",
        "orm_get(OrmCustomer, 1)",
        baseline="plain dict lookup `m[1]`",
    )
    bare = "per-entity dict by bare pk `m[C][1]` (typed_session inside)"
    add("key", bare, "pk_map[C][1]")
    add(
        "key",
        "plain tuple `(C, (1,), None)`",
        "m[(C, (1,), None)]",
        "m = {(C, (i,), None): i for i in range(1000)}",
        bare,
    )
    add(
        "key",
        "`NamedTuple` key",
        "m[TupleKey(C, (1,), None)]",
        "m = {TupleKey(C, (i,), None): i for i in range(1000)}",
        bare,
    )
    add(
        "key",
        "`IdentityKey` (frozen slotted dataclass)",
        "m[IdentityKey(C, (1,), None)]",
        "m = {IdentityKey(C, (i,), None): i for i in range(1000)}",
        bare,
    )
    ts_session.rollback()
    orm_session.rollback()
    ts_session.close()
    orm_session.close()

    # memory per loaded object
    n = MEMORY_ROWS
    ts_engine = create_engine("sqlite://")
    _fill(ts_engine, TS_META, TS_TABLE, n)
    orm_engine = create_engine("sqlite://")
    _fill(orm_engine, OrmBase.metadata, OrmCustomer.__table__, n)  # type: ignore[arg-type]
    core_engine = create_engine("sqlite://")
    _fill(core_engine, TS_META, TS_TABLE, n)
    holder: dict[str, Any] = {}

    def ts_load() -> Any:
        s = holder["s"] = Session(ts_engine)
        return s.scalars(select(TsCustomer)).all()

    def orm_load() -> Any:
        s = holder["s"] = sa_orm.Session(orm_engine)
        return s.scalars(select(OrmCustomer)).all()

    def core_load() -> Any:
        c = holder["s"] = core_engine.connect()
        return c.execute(select(TS_TABLE)).all()

    def release() -> None:
        holder.pop("s").close()

    core_label = f"Core `Row` ({n:,} rows)"
    mem = [
        (core_label, core_load),
        (f"typed_session object ({n:,} rows)", ts_load),
        (f"SQLAlchemy ORM object ({n:,} rows)", orm_load),
    ]
    for label, load in mem:
        b = min(bytes_per_object(load, release, n) for _ in range(3))
        rows.append(Row("memory", label, b, "bytes", None if load is core_load else core_label))
        print(f"  {'memory':10s} {label:62s} {b:8.0f} B", file=sys.stderr, flush=True)
    for e in (ts_engine, orm_engine, core_engine):
        e.dispose()
    return rows


SECTIONS = {
    "read": "attribute read",
    "write": "attribute write",
    "get": "`session.get()`, identity-map hit",
    "key": "identity-map lookup, key built per lookup",
    "memory": "memory per loaded row",
}


def markdown(rows: list[Row], number: int, meta: dict[str, Any]) -> str:
    by_label = {(r.section, r.label): r.value for r in rows}
    out = [
        f"# attr_read, {meta['date']}",
        "",
        f"Python {meta['python']}, SQLAlchemy {meta['sqlalchemy']}, {meta['machine']}. "
        f"timeit: minimum of {REPEAT} repeats of {number:,} operations; memory: tracemalloc, "
        f"minimum of 3.",
        "",
        "| section | operation | value | ratio to baseline |",
        "|---|---|---|---|",
    ]
    for r in rows:
        value = f"{r.value:.0f} B" if r.unit == "bytes" else f"{r.value:.1f} ns"
        ratio = "-" if r.baseline is None else f"{r.value / by_label[(r.section, r.baseline)]:.1f}"
        out.append(f"| {SECTIONS[r.section]} | {r.label} | {value} | {ratio} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--number", type=int, default=NUMBER, help="operations per timeit repeat")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--md", type=Path, help="write the Markdown table here")
    args = p.parse_args(argv)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "number": args.number,
        "repeat": REPEAT,
    }
    rows = run(args.number)
    table = markdown(rows, args.number, meta)
    print(table)
    if args.md:
        args.md.write_text(table + "\n")
    if args.json:
        data = {"meta": meta, "results": [r._asdict() for r in rows]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
