"""CPU cost of the session's own work, with the cyclic garbage collector off.

The peer benchmark measures whole workloads with the collector on, as users run them;
its run-to-run noise on this machine is a few percent. This script isolates what a code
change costs in CPU alone: ``add_all`` of N new objects, the INSERT flush, and the UPDATE
flush of N modified objects, on in-memory SQLite, minimum of R repetitions.

    PYTHONPATH=. .venv/bin/python bench/flush_cpu.py [--n 20000] [--reps 15]
"""

from __future__ import annotations

import argparse
import gc
import time

from sqlalchemy import create_engine, select

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="flush_cpu")
class Row:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    description: Mapped[str]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    n: int = args.n
    engine = create_engine("sqlite://")
    reg.create_all(engine)
    session = Session(engine, expire_on_commit=False)
    session.add_all([Row(name=f"n{i}", description="d") for i in range(n)])
    session.commit()
    loaded = session.scalars(select(Row)).all()
    gc.disable()
    update, add_all, insert = [], [], []
    for rep in range(args.reps):
        for row in loaded:
            row.description = f"u{rep}"
        start = time.perf_counter()
        session.flush()
        update.append(time.perf_counter() - start)
        session.commit()
        fresh = [Row(name="x", description="d") for _ in range(n)]
        other = Session(engine)
        start = time.perf_counter()
        other.add_all(fresh)
        added = time.perf_counter()
        other.flush()
        add_all.append(added - start)
        insert.append(time.perf_counter() - added)
        other.rollback()
        other.close()
    gc.enable()
    print(
        f"N={n}, min of {args.reps}: add_all {min(add_all) * 1e3:.1f} ms, "
        f"INSERT flush {min(insert) * 1e3:.1f} ms, UPDATE flush {min(update) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
