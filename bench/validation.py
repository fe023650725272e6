"""What ``validate=True`` costs: construction and assignment, validation on against off.

Two entities with the same three attributes (an int, a constrained str, a float), one
mapped with ``validate=True``. Each operation is timed with ``timeit`` (collector on),
minimum of R repeats of N operations; the ratios come from the one run.

    PYTHONPATH=. .venv/bin/python bench/validation.py [--number 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import timeit
from typing import Annotated

from pydantic import Field
from sqlalchemy import create_engine

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="bench_off")
class Off:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[Annotated[str, Field(max_length=50)]]
    count: Mapped[int]
    score: Mapped[float]


@entity(reg, table="bench_on", validate=True)
class On:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[Annotated[str, Field(max_length=50)]]
    count: Mapped[int]
    score: Mapped[float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    number, repeat = args.number, args.repeat
    engine = create_engine("sqlite://")
    reg.create_all(engine)
    session = Session(engine, expire_on_commit=False)
    off, on = Off(name="a", count=1, score=1.0), On(name="a", count=1, score=1.0)
    session.add_all([off, on])
    session.commit()  # both persistent: an assignment records history

    def best(stmt: str, namespace: dict[str, object]) -> float:
        times = timeit.repeat(stmt, globals=namespace, number=number, repeat=repeat)
        return min(times) / number * 1e6

    rows = []
    for label, stmt in [
        ("construct (3 values)", "cls(name='abc', count=1, score=2.0)"),
        ("assign str (persistent)", "obj.name = 'abc'"),
        ("assign int (persistent)", "obj.count = 7"),
    ]:
        t_off = best(stmt, {"cls": Off, "obj": off})
        t_on = best(stmt, {"cls": On, "obj": on})
        rows.append((label, t_off, t_on))
    print(f"N={number}, min of {repeat}, us per operation, collector on")
    print("| operation | validate off | validate on | on / off |")
    print("|---|---|---|---|")
    for label, t_off, t_on in rows:
        print(f"| {label} | {t_off:.3f} | {t_on:.3f} | {t_on / t_off:.2f}x |")


if __name__ == "__main__":
    main()
