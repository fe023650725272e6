"""What a version column costs: the UPDATE flush of N changed objects, versioned or not.

A versioned table's rows are UPDATEd one statement each (so that the row count names the
stale object); an unversioned table's in one ``executemany`` per set of changed columns.
Two entities with the same columns, one with ``version_column``; each rep changes every
loaded object and times ``flush()``; interleaved, collector on, median of R.

    PYTHONPATH=. .venv/bin/python bench/versioning.py [--n 5000] [--reps 7] [--url sqlite://]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import create_engine, insert, select

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="bench_plain")
class Plain:
    id: Mapped[int] = column(primary_key=True)
    description: Mapped[str]


@entity(reg, table="bench_versioned", version_column="version")
class Versioned:
    id: Mapped[int] = column(primary_key=True)
    description: Mapped[str]
    version: Mapped[int] = column(init=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--url", default="sqlite://")
    args = parser.parse_args()
    n: int = args.n
    engine = create_engine(args.url)
    reg.drop_all(engine)
    reg.create_all(engine)
    with engine.begin() as conn:
        rows = [{"id": i, "description": "d"} for i in range(n)]
        conn.execute(insert(Plain.__clause_element__()), rows)
        conn.execute(insert(Versioned.__clause_element__()), [{**r, "version": 1} for r in rows])
    times: dict[str, list[float]] = {"unversioned": [], "versioned": []}
    classes: dict[str, Any] = {"unversioned": Plain, "versioned": Versioned}
    for rep in range(args.reps):
        for name, cls in classes.items():
            with Session(engine, expire_on_commit=False) as session:
                objs = session.scalars(select(cls)).all()
                for obj in objs:
                    obj.description = f"u{rep}"
                start = time.perf_counter()
                session.flush()
                times[name].append(time.perf_counter() - start)
                session.commit()
    reg.drop_all(engine)
    plain, versioned = (statistics.median(times[k]) * 1e3 for k in ("unversioned", "versioned"))
    print(f"{engine.dialect.name}, N={n}, median of {args.reps}, UPDATE flush in ms:")
    print(f"unversioned {plain:.1f}, versioned {versioned:.1f} ({versioned / plain:.2f}x)")


if __name__ == "__main__":
    main()
