"""insert and load_all through typed_session's AsyncSession, SQLAlchemy's and async Core.

On PostgreSQL through asyncpg, in one run: typed_session's ``AsyncSession``,
SQLAlchemy's ORM ``AsyncSession`` (the peer), and async Core (``AsyncConnection``), plus
typed_session's sync ``Session`` and sync Core through psycopg, for the async overhead
with the driver factored out. Each workload
as peers_plugin.py runs it: ``insert`` = construct N objects, ``add_all``, ``commit`` on a
fresh session; ``load_all`` = ``scalars(select(Customer)).all()`` on a fresh session,
held. The minimum of ``--repeat`` runs is reported, with ratios.

    .venv/bin/python -m bench.async_bench [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, select, text
from sqlalchemy import insert as core_insert
from sqlalchemy import orm as sa_orm
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as OrmAsyncSession

from typed_session import Mapped, Registry, Session, column, entity
from typed_session.asyncio import AsyncSession

ASYNC_URL = os.environ.get(
    "TYPED_SESSION_PG_ASYNC_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
SYNC_URL = os.environ.get(
    "TYPED_SESSION_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).resolve().parent / "results"

SCHEMA = MetaData()
CUSTOMER = Table(
    "async_bench_customer",
    SCHEMA,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", String(255), nullable=False),
)

reg = Registry(SCHEMA)


@entity(reg, table=CUSTOMER)
class Customer:
    id: Mapped[int] = column(init=False)
    name: Mapped[str]
    description: Mapped[str]


class OrmCustomer:
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description


sa_orm.registry().map_imperatively(OrmCustomer, CUSTOMER)


def values(i: int) -> tuple[str, str]:
    return f"customer {i}", f"description of customer {i}"


Workload = Callable[[int], Awaitable[int]]


def implementations(engine: AsyncEngine, sync_engine: Engine) -> dict[str, dict[str, Workload]]:

    async def ts_insert(n: int) -> int:
        async with AsyncSession(engine) as session:
            session.add_all([Customer(name=a, description=b) for a, b in map(values, range(n))])
            await session.commit()
        return n

    async def ts_load(_: int) -> int:
        async with AsyncSession(engine) as session:
            return len((await session.scalars(select(Customer))).all())

    async def orm_insert(n: int) -> int:
        async with OrmAsyncSession(engine) as session:
            session.add_all([OrmCustomer(*values(i)) for i in range(n)])
            await session.commit()
        return n

    async def orm_load(_: int) -> int:
        async with OrmAsyncSession(engine) as session:
            return len((await session.scalars(select(OrmCustomer))).all())

    async def core_insert_rows(n: int) -> int:
        rows = [{"name": a, "description": b} for a, b in map(values, range(n))]
        async with engine.begin() as conn:
            await conn.execute(core_insert(CUSTOMER), rows)
        return n

    async def core_load(_: int) -> int:
        async with engine.connect() as conn:
            return len((await conn.execute(select(CUSTOMER))).all())

    async def sync_insert(n: int) -> int:
        with Session(sync_engine) as session:
            session.add_all([Customer(name=a, description=b) for a, b in map(values, range(n))])
            session.commit()
        return n

    async def sync_load(_: int) -> int:
        with Session(sync_engine) as session:
            return len(session.scalars(select(Customer)).all())

    async def sync_core_insert(n: int) -> int:
        rows = [{"name": a, "description": b} for a, b in map(values, range(n))]
        with sync_engine.begin() as conn:
            conn.execute(core_insert(CUSTOMER), rows)
        return n

    async def sync_core_load(_: int) -> int:
        with sync_engine.connect() as conn:
            return len(conn.execute(select(CUSTOMER)).all())

    return {
        "typed_session AsyncSession": {"insert": ts_insert, "load_all": ts_load},
        "SQLAlchemy ORM AsyncSession": {"insert": orm_insert, "load_all": orm_load},
        "async Core": {"insert": core_insert_rows, "load_all": core_load},
        "typed_session Session (sync, psycopg)": {"insert": sync_insert, "load_all": sync_load},
        "Core (sync, psycopg)": {"insert": sync_core_insert, "load_all": sync_core_load},
    }


async def reset(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE async_bench_customer RESTART IDENTITY"))
        if n:
            rows = [{"name": a, "description": b} for a, b in map(values, range(n))]
            await conn.execute(core_insert(CUSTOMER), rows)


async def measure(rows: int, repeat: int) -> dict[str, dict[str, float]]:
    engine = create_async_engine(ASYNC_URL)
    async with engine.begin() as conn:
        await conn.run_sync(SCHEMA.drop_all)
        await conn.run_sync(SCHEMA.create_all)
    sync_engine = create_engine(SYNC_URL)
    impls = implementations(engine, sync_engine)
    best: dict[str, dict[str, float]] = {name: {} for name in impls}
    for _ in range(repeat):  # interleaved: each round runs every implementation once
        for name, workloads in impls.items():
            for workload, fn in workloads.items():
                await reset(engine, 0 if workload == "insert" else rows)
                start = time.perf_counter()
                done = await fn(rows)
                elapsed = time.perf_counter() - start
                assert done == rows, (name, workload, done)
                best[name][workload] = min(best[name].get(workload, elapsed), elapsed)
    async with engine.begin() as conn:
        await conn.run_sync(SCHEMA.drop_all)
    await engine.dispose()
    sync_engine.dispose()
    return best


def markdown(best: dict[str, dict[str, float]], rows: int, repeat: int) -> str:
    ts = best["typed_session AsyncSession"]
    orm = best["SQLAlchemy ORM AsyncSession"]
    core = best["async Core"]
    sync = best["typed_session Session (sync, psycopg)"]
    lines = [
        f"PostgreSQL (asyncpg), {rows} rows, minimum of {repeat} interleaved runs; "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}.",
        "",
        "| workload | implementation | ms | vs async Core | vs SQLAlchemy AsyncSession |",
        "|---|---|---:|---:|---:|",
    ]
    for workload in ("insert", "load_all"):
        for name, times in best.items():
            t = times[workload]
            lines.append(
                f"| {workload} | {name} | {t * 1000:.1f} | {t / core[workload]:.2f}x "
                f"| {t / orm[workload]:.2f}x |"
            )
    sync_core = best["Core (sync, psycopg)"]
    lines += [
        "",
        "AsyncSession on asyncpg / Session on psycopg (drivers differ): "
        + ", ".join(f"{w} {ts[w] / sync[w]:.2f}x" for w in ("insert", "load_all")),
        "",
        "async overhead with the driver factored out, (AsyncSession / async Core) over "
        "(Session / sync Core): "
        + ", ".join(
            f"{w} {(ts[w] / core[w]) / (sync[w] / sync_core[w]):.2f}x"
            for w in ("insert", "load_all")
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    best = asyncio.run(measure(args.rows, args.repeat))
    text_ = markdown(best, args.rows, args.repeat)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "async-postgresql.md").write_text(text_)
    payload: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat, "seconds": best}
    (RESULTS / "async-postgresql.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(text_)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
