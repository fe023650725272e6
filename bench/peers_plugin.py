"""``typed_session`` as a plug-in of the peer benchmark (``../shared/bench/peers.py``).

Run from the repository root::

    PYTHONPATH=. python ../shared/bench/peers.py --plugin bench.peers_plugin:TypedSessionImpl

The harness runs ``peers.py`` as ``__main__``, so its ``CUSTOMER`` / ``PARENT`` / ``CHILD``
tables cannot be imported from here reliably: this module declares the same three tables
(identical DDL: same names, column types, nullability, primary and foreign keys) in its
own ``MetaData`` and maps the entities onto them with ``@entity(reg, table=<Table>)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    select,
)
from sqlalchemy.engine import Engine

from typed_session import Mapped, Registry, Session, column, entity, relationship

__all__ = [
    "CHILD",
    "CUSTOMER",
    "PARENT",
    "SCHEMA",
    "Child",
    "Customer",
    "Parent",
    "TypedSessionImpl",
]

CHILDREN_PER_PARENT = 10

# The canonical schema of peers.py, column for column.
SCHEMA = MetaData()
CUSTOMER = Table(
    "customer",
    SCHEMA,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", String(255), nullable=False),
)
PARENT = Table(
    "parent",
    SCHEMA,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
)
CHILD = Table(
    "child",
    SCHEMA,
    Column("id", Integer, primary_key=True),
    Column("parent_id", Integer, ForeignKey("parent.id"), nullable=False),
    Column("name", String(255), nullable=False),
)

reg = Registry(SCHEMA)


@entity(reg, table=CUSTOMER)
class Customer:
    id: Mapped[int] = column(init=False)
    name: Mapped[str]
    description: Mapped[str]


@entity(reg, table=PARENT)
class Parent:
    id: Mapped[int] = column(init=False)
    name: Mapped[str]
    children: Mapped[list[Child]] = relationship(
        default_factory=list, back_populates=lambda: Child.parent
    )


@entity(reg, table=CHILD)
class Child:
    id: Mapped[int] = column(init=False)
    parent_id: Mapped[int] = column(init=False)
    name: Mapped[str]
    parent: Mapped[Parent | None] = relationship(default=None, back_populates="children")


def customer_values(i: int) -> tuple[str, str]:
    """(name, description) of customer number ``i``, as peers.py makes them."""
    return f"customer name {i}", f"customer description {i}"


def parent_values(p: int) -> str:
    return f"parent {p}"


def child_values(p: int, j: int) -> str:
    return f"child {p}-{j}"


class TypedSessionImpl:
    """typed_session with ``Session(engine)`` defaults (autoflush, expire_on_commit=True).

    Every workload mirrors ``OrmImpl`` of peers.py call for call, ``parent_child``
    included: parents constructed with ``children=[Child(...), ...]`` through the
    ``Parent.children`` / ``Child.parent`` relationship (``back_populates``), ``add_all``
    of the parents (the save-update cascade adds the children), one ``commit()`` whose
    flush copies each parent's generated key into its children.
    """

    name = "typed_session"

    def __init__(self) -> None:
        self._session: Session[Engine] | None = None
        self._held: Sequence[Any] | None = None

    def setup(self, url: str) -> None:
        self.engine: Engine = create_engine(url)

    def reset(self) -> None:
        self.release()
        with self.engine.begin() as conn:
            SCHEMA.drop_all(conn)
            SCHEMA.create_all(conn)

    def _fresh(self) -> Session[Engine]:
        self._session = Session(self.engine)
        return self._session

    def _current(self) -> Session[Engine]:
        assert self._session is not None, "no session: call the loading workload first"
        return self._session

    def insert(self, n: int) -> None:
        session = self._fresh()
        objs = [Customer(name=nm, description=ds) for nm, ds in map(customer_values, range(n))]
        session.add_all(objs)
        session.commit()
        self._held = objs

    def load_all(self) -> int:
        held = self._fresh().scalars(select(Customer)).all()
        self._held = held
        return len(held)

    def get_cold(self, ids: Sequence[int]) -> Sequence[object | None]:
        get = self._fresh().get
        held = [get(Customer, i) for i in ids]
        self._held = held
        return held

    def get_hot(self, ids: Sequence[int]) -> Sequence[object | None]:
        get = self._current().get
        return [get(Customer, i) for i in ids]

    def load_for_change(self) -> None:
        self.load_all()

    def update_all(self) -> None:
        assert self._held is not None
        for c in self._held:
            c.description = c.description + " updated"
        self._current().commit()

    def delete_all(self) -> None:
        assert self._held is not None
        session = self._current()
        for c in self._held:
            session.delete(c)
        session.commit()

    def parent_child(self, n: int) -> None:
        session = self._fresh()
        parents = [
            Parent(
                name=parent_values(p),
                children=[Child(name=child_values(p, j)) for j in range(CHILDREN_PER_PARENT)],
            )
            for p in range(n // CHILDREN_PER_PARENT)
        ]
        session.add_all(parents)
        session.commit()
        self._held = parents

    def scalar(self, sql: str) -> object:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()

    def release(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self._held = None

    def teardown(self) -> None:
        self.release()
        self.engine.dispose()
