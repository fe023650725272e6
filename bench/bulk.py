"""Bulk operations against Core's ``executemany``: what the session adds on top of Core.

Each workload writes N rows of a three-column table in one transaction and commits,
once through Core (``conn.execute(insert(table), rows)`` and its UPDATE / RETURNING
twins, parameters built beforehand) and once through the session's bulk method, taking
the same list of dictionaries (or of objects, for ``bulk_save_objects``). The two are
interleaved, R repetitions each, garbage collector on; the table is emptied outside the
timing. Ratios come from the one run.

    PYTHONPATH=. .venv/bin/python bench/bulk.py [--n 20000] [--reps 7] [--url sqlite://]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, create_engine, delete, insert, update

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="bench_bulk_items")
class Item:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    description: Mapped[str]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--url", default="sqlite://")
    args = parser.parse_args()
    n: int = args.n
    engine = create_engine(args.url)
    reg.drop_all(engine)
    reg.create_all(engine)
    t = reg.metadata.tables["bench_bulk_items"]
    results: dict[str, tuple[list[float], list[float]]] = {}

    def empty() -> None:
        with engine.begin() as conn:
            conn.execute(delete(t))

    def fill() -> None:
        empty()
        with engine.begin() as conn:
            conn.execute(
                insert(t), [{"id": i, "name": f"n{i}", "description": "d"} for i in range(n)]
            )

    def timed(prepare: Callable[[], Any], run: Callable[[Any], None]) -> float:
        arg = prepare()
        start = time.perf_counter()
        run(arg)
        return time.perf_counter() - start

    def core_insert(rows: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            conn.execute(insert(t), rows)

    def ts_insert(rows: list[dict[str, Any]]) -> None:
        with Session(engine) as session:
            session.bulk_insert_mappings(Item, rows)
            session.commit()

    def core_returning(rows: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            stmt = insert(t).returning(t.c.id, sort_by_parameter_order=True)
            ids = conn.execute(stmt, rows).scalars().all()
            for row, ident in zip(rows, ids, strict=True):
                row["id"] = ident

    def ts_returning(rows: list[dict[str, Any]]) -> None:
        with Session(engine) as session:
            session.bulk_insert_mappings(Item, rows, return_defaults=True)
            session.commit()

    def ts_objects(objs: list[Item]) -> None:
        with Session(engine) as session:
            session.bulk_save_objects(objs)
            session.commit()

    def core_update(params: list[dict[str, Any]]) -> None:
        stmt = update(t).where(t.c.id == bindparam("b_id")).values(description=bindparam("b_d"))
        with engine.begin() as conn:
            conn.execute(stmt, params)

    def ts_update(rows: list[dict[str, Any]]) -> None:
        with Session(engine) as session:
            session.bulk_update_mappings(Item, rows)
            session.commit()

    def rows() -> list[dict[str, Any]]:
        empty()
        return [{"name": f"n{i}", "description": "d"} for i in range(n)]

    def objects() -> list[Item]:
        empty()
        return [Item(name=f"n{i}", description="d") for i in range(n)]

    def core_update_params() -> list[dict[str, Any]]:
        fill()
        return [{"b_id": i, "b_d": "u"} for i in range(n)]

    def update_rows() -> list[dict[str, Any]]:
        fill()
        return [{"id": i, "description": "u"} for i in range(n)]

    workloads: list[tuple[str, Callable[[], float], Callable[[], float]]] = [
        (
            "bulk_insert_mappings",
            lambda: timed(rows, core_insert),
            lambda: timed(rows, ts_insert),
        ),
        (
            "bulk_insert_mappings(return_defaults=True)",
            lambda: timed(rows, core_returning),
            lambda: timed(rows, ts_returning),
        ),
        (
            "bulk_save_objects (insert)",
            lambda: timed(rows, core_insert),
            lambda: timed(objects, ts_objects),
        ),
        (
            "bulk_update_mappings",
            lambda: timed(core_update_params, core_update),
            lambda: timed(update_rows, ts_update),
        ),
    ]
    for name, core, ours in workloads:
        core_times: list[float] = []
        our_times: list[float] = []
        for _ in range(args.reps):
            core_times.append(core())
            our_times.append(ours())
        results[name] = (core_times, our_times)
    reg.drop_all(engine)
    print(f"{engine.dialect.name}, N={n}, median of {args.reps} interleaved runs, ms")
    print("| workload | Core | typed_session | typed_session / Core |")
    print("|---|---|---|---|")
    for name, (core_times, our_times) in results.items():
        c, o = statistics.median(core_times) * 1e3, statistics.median(our_times) * 1e3
        print(f"| {name} | {c:.1f} | {o:.1f} | {o / c:.2f}x |")


if __name__ == "__main__":
    main()
