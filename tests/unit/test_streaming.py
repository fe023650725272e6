"""A result read with ``yield_per`` streams (issue 17, item 2).

Its objects are built a batch at a time as the reader advances, and the ones the reader
has dropped are freed, with their states and identity-map entries: reading a result of any
size holds about one batch. ``bench/streaming.py`` shows it on 1,000,000 rows (peak memory
the same as at 100,000, and as Core's own ``partitions()``).
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Engine, insert, select

from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="st_rows")
class Row:
    id: Mapped[int] = column(primary_key=True)
    qty: Mapped[int]


N = 5000
BATCH = 100


def _fill(engine: Engine) -> None:
    reg.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(reg.metadata.tables["st_rows"]), [{"id": i, "qty": i} for i in range(N)]
        )


def test_objects_are_built_a_batch_at_a_time_and_freed_behind_the_reader(
    memory_engine: Engine,
) -> None:
    _fill(memory_engine)
    with Session(memory_engine) as session:
        result = session.scalars(select(Row).execution_options(yield_per=BATCH))
        first: list[weakref.ref[Any]] = []
        most_states = 0
        total = 0
        for i, row in enumerate(result):
            assert row.id == i
            total += row.qty
            if i < BATCH:
                first.append(weakref.ref(row))
            if i % BATCH == 0:  # the session's map holds only what is alive
                most_states = max(most_states, len(session.identity_map))
        del row
        assert total == sum(range(N))
        assert all(ref() is None for ref in first)  # freed at once: no cycle, no GC needed
        assert most_states <= 2 * BATCH + 1
        assert len(session.identity_map) == 0


def test_without_yield_per_every_object_is_built_before_the_first_is_read(
    memory_engine: Engine,
) -> None:
    _fill(memory_engine)
    with Session(memory_engine) as session:
        result = session.scalars(select(Row))
        next(iter(result))
        assert len(session.identity_map) == N
