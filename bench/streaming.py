"""Peak memory of reading a big result, streamed or not (issue 17, item 2).

A result read with ``yield_per`` is loaded a batch at a time, and each batch's objects
can be collected as soon as the reader drops them, so the peak memory of a loop over a
1,000,000-row result should not depend on the number of rows. ``.all()`` holds every
object, so its peak grows with N. Each measurement runs in its own process (peak RSS is
a per-process high-water mark) over one SQLite file: the rows are inserted once.

    .venv/bin/python -m bench.streaming [--n 100000 1000000] [--yield-per 1000]

Prints a Markdown table: rows, mode, seconds, µs per row, peak RSS growth during the read
(MiB), and bytes per row of that growth. Modes: ``typed_session yield_per`` (a loop over
``session.scalars(select(Item).execution_options(yield_per=K))``), ``typed_session
all()``, and Core's ``connection.execute(...).partitions(K)`` as the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, select

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="stream_items")
class Item:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]
    qty: Mapped[int]
    note: Mapped[str | None] = column(default=None)


MODES = ("typed_session yield_per", "typed_session all()", "Core partitions")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fill(engine: Engine, n: int) -> None:
    reg.create_all(engine)
    table = reg.metadata.tables["stream_items"]
    with engine.begin() as conn:
        for start in range(0, n, 50_000):
            rows = [
                {"id": i, "name": f"item {i}", "qty": i % 97, "note": None if i % 3 else "x"}
                for i in range(start, min(n, start + 50_000))
            ]
            conn.execute(insert(table), rows)


def child(mode: str, path: str, yield_per: int) -> dict[str, float]:
    """Read every row once in ``mode``; return rows, seconds and peak RSS growth."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:  # warm: the connection and the compiled statement
        conn.execute(select(reg.metadata.tables["stream_items"]).limit(10)).all()
    before = _rss_bytes()
    start = time.perf_counter()
    rows = 0
    if mode == "typed_session yield_per":
        with Session(engine) as session:
            stmt = select(Item).execution_options(yield_per=yield_per)
            for item in session.scalars(stmt):
                rows += item.qty >= 0
    elif mode == "typed_session all()":
        with Session(engine) as session:
            items = session.scalars(select(Item)).all()
            rows = sum(item.qty >= 0 for item in items)
    else:
        table = reg.metadata.tables["stream_items"]
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=yield_per).execute(select(table))
            for part in result.partitions(yield_per):
                rows += len(part)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"rows": rows, "seconds": seconds, "peak_growth": max(0, peak - before)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--yield-per", type=int, default=1000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.yield_per)))
        return 0
    print("| rows | mode | s | µs/row | peak RSS growth (MiB) | bytes/row |")
    print("|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            path = str(Path(tmp) / f"stream-{n}.db")
            _fill(create_engine(f"sqlite:///{path}"), n)
            for mode in MODES:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.streaming",
                        "--yield-per",
                        str(args.yield_per),
                        "--child",
                        mode,
                        path,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                got = json.loads(out.stdout)
                if got["rows"] != n:
                    raise AssertionError(f"{mode}: read {got['rows']} rows, expected {n}")
                growth = got["peak_growth"]
                print(
                    f"| {n:,} | {mode} | {got['seconds']:.2f} | "
                    f"{got['seconds'] / n * 1e6:.2f} | {growth / 2**20:.1f} | {growth / n:.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
