"""Cost of bind resolution: a three-entry bind map against a single bind (issue 16, item 6).

Every statement a session sends first asks which bind it goes to: the flush once per
table and flush, a query once per statement (``get_bind(clause=...)``: the statement's
entities through their MRO, then its tables), ``get()`` once per SELECT by key. With a
single bind that is one attribute test; with a bind map it is a walk. This script runs
the same workloads on the same engine through three sessions:

* ``single``: ``Session(engine)``;
* ``map3-class``: ``Session(binds={Customer: engine, Other: engine, other_table: engine})``
  (the entity bound by its own class);
* ``map3-base``: ``Session(binds={Base: engine, Other: engine, other_table: engine})``
  (bound through a base class: the longest walk a hit takes);

workloads ``insert`` (construct N, ``add_all``, ``commit``), ``load_all``
(``scalars(select(Customer)).all()`` on a fresh session) and ``get_cold`` (``get()`` of
each of M keys on a fresh session: one resolution per SELECT, the worst ratio).

Two measures, because the second is far below the first's noise on a shared machine:

1. each workload's client CPU time (``time.process_time``: the database server's work
   is left out, which is not what changes), the configurations interleaved within each
   repetition, the minimum reported;
2. the direct cost: nanoseconds per ``get_bind`` call in each form (``timeit``), times
   the number of calls the workload makes (counted), over the workload's time: the share
   of the workload that bind resolution takes, and what the map adds to it.

    PYTHONPATH=. .venv/bin/python bench/binds.py [--n 20000] [--m 2000] [--reps 7]
        [--backends sqlite-memory postgresql] [--pg-url URL] [--md out.md]
"""

from __future__ import annotations

import argparse
import gc
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, delete, select
from sqlalchemy.engine import Engine

from typed_session import Mapped, Registry, Session, column, entity, inspect_entity, mixin

reg = Registry()
OTHER_TABLE = Table("bench_binds_other", MetaData(), Column("id", Integer, primary_key=True))


@mixin
class Base:
    pass


@entity(reg, table="bench_binds_customer")
class Customer(Base):
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    description: Mapped[str]


@entity(reg, table="bench_binds_other_entity")
class Other:
    id: Mapped[int] = column(primary_key=True)


class CountingSession(Session[Engine]):
    """A session that counts its ``get_bind`` calls, by form."""

    calls: ClassVar[dict[str, int]] = {"entity": 0, "statement": 0}

    def get_bind(self, entity: type[Any] | None = None, clause: object | None = None) -> Any:
        CountingSession.calls["entity" if clause is None else "statement"] += 1
        return super().get_bind(entity, clause)


Make = Callable[[Engine], Session[Engine]]


def _configs(cls: type[Session[Engine]]) -> dict[str, Make]:
    return {
        "single": lambda e: cls(e),
        "map3-class": lambda e: cls(binds={Customer: e, Other: e, OTHER_TABLE: e}),
        "map3-base": lambda e: cls(binds={Base: e, Other: e, OTHER_TABLE: e}),
    }


CONFIGS = _configs(Session)


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def _insert(engine: Engine, make: Callable[[Engine], Session[Engine]], n: int) -> float:
    with engine.begin() as conn:
        conn.execute(delete(inspect_entity(Customer).table))

    def run() -> None:
        with make(engine) as session:
            session.add_all([Customer(name=f"c{i}", description="d") for i in range(n)])
            session.commit()

    return _timed(run)


def _load_all(engine: Engine, make: Callable[[Engine], Session[Engine]]) -> float:
    def run() -> None:
        with make(engine) as session:
            session.scalars(select(Customer)).all()

    return _timed(run)


def _get_cold(engine: Engine, make: Callable[[Engine], Session[Engine]], m: int) -> float:
    with engine.connect() as conn:
        ids = list(conn.execute(select(Customer.id).order_by(Customer.id).limit(m)).scalars())

    def run() -> None:
        with make(engine) as session:
            for i in ids:
                session.get(Customer, i)

    return _timed(run)


def _resolution_ns(engine: Engine) -> dict[str, tuple[float, float]]:
    """Nanoseconds per get_bind call: (entity form, as flush and get() ask; statement form)."""
    statement = select(Customer)
    out: dict[str, tuple[float, float]] = {}
    for name, make in CONFIGS.items():
        session = make(engine)
        number = 200_000
        by_entity = min(timeit.repeat(partial(session.get_bind, Customer), number=number, repeat=5))
        by_clause = min(
            timeit.repeat(partial(session.get_bind, clause=statement), number=number, repeat=5)
        )
        out[name] = (by_entity / number * 1e9, by_clause / number * 1e9)
    return out


def _workloads(engine: Engine, make: Make, n: int, m: int) -> dict[str, float]:
    return {
        "insert": _insert(engine, make, n),
        "load_all": _load_all(engine, make),
        "get_cold": _get_cold(engine, make, m),
    }


def _calls(engine: Engine, n: int, m: int) -> dict[str, dict[str, int]]:
    """How many get_bind calls of each form each workload makes (the same for every map)."""
    make = _configs(CountingSession)["map3-base"]
    out: dict[str, dict[str, int]] = {}
    for workload, run in (
        ("insert", lambda: _insert(engine, make, n)),
        ("load_all", lambda: _load_all(engine, make)),
        ("get_cold", lambda: _get_cold(engine, make, m)),
    ):
        CountingSession.calls = {"entity": 0, "statement": 0}
        run()
        out[workload] = dict(CountingSession.calls)
    return out


Result = tuple[
    dict[str, dict[str, float]], dict[str, tuple[float, float]], dict[str, dict[str, int]]
]


def run_backend(url: str, n: int, m: int, reps: int) -> Result:
    engine = create_engine(url)
    reg.drop_all(engine)
    reg.create_all(engine)
    times: dict[str, dict[str, list[float]]] = {
        w: {c: [] for c in CONFIGS} for w in ("insert", "load_all", "get_cold")
    }
    try:
        for _ in range(reps):
            for name, make in CONFIGS.items():  # interleaved: drift hits every config alike
                for workload, seconds in _workloads(engine, make, n, m).items():
                    times[workload][name].append(seconds)
        calls = _calls(engine, n, m)
        resolution = _resolution_ns(engine)
    finally:
        reg.drop_all(engine)
        engine.dispose()
    best = {w: {c: min(v) for c, v in by.items()} for w, by in times.items()}
    return best, resolution, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--m", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--backends", nargs="+", default=["sqlite-memory", "postgresql"])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--md")
    args = parser.parse_args()
    urls = {"sqlite-memory": "sqlite://", "postgresql": args.pg_url}
    lines: list[str] = []
    for backend in args.backends:
        best, resolution, calls = run_backend(urls[backend], args.n, args.m, args.reps)
        lines += [
            f"{backend}, N={args.n} (get_cold: M={args.m}). Client CPU, ms, minimum of "
            f"{args.reps} interleaved repetitions (change against `single`):",
            "",
            "| workload | single | map3-class | map3-base |",
            "|---|---|---|---|",
        ]
        for workload, by in best.items():
            base = by["single"]
            cells = [f"{base * 1e3:.1f}"] + [
                f"{by[c] * 1e3:.1f} ({(by[c] / base - 1) * 100:+.1f}%)"
                for c in ("map3-class", "map3-base")
            ]
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "One `get_bind` call, ns (entity form / statement form): "
            + ", ".join(f"{c} {e:.0f} / {s:.0f}" for c, (e, s) in resolution.items())
            + ".",
            "",
            "Calls per workload and the share of the `single` workload's time they take "
            "(each map's extra in brackets):",
            "",
            "| workload | calls (entity / statement) | single | map3-class | map3-base |",
            "|---|---|---|---|---|",
        ]
        for workload, counted in calls.items():
            total = best[workload]["single"] * 1e9
            share = {
                c: (counted["entity"] * e + counted["statement"] * s) / total
                for c, (e, s) in resolution.items()
            }
            cells = [f"{counted['entity']} / {counted['statement']}", f"{share['single']:.3%}"]
            cells += [
                f"{share[c]:.3%} (+{share[c] - share['single']:.3%})"
                for c in ("map3-class", "map3-base")
            ]
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
