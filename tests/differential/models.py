"""The same two entities mapped twice: by typed_session, and by SQLAlchemy's ORM (the oracle).

``Auto`` has a database-generated integer key; ``Pair`` has a natural composite key
``(code, num)``, so that key changes, same-key conflicts and row switches happen. The
table names differ between the two sides, so that on PostgreSQL and MariaDB both sides
can live in the one test database; on SQLite each side has a database file of its own.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.orm import Mapped as SaMapped

from typed_session import Mapped, Registry, column, entity

ts_registry = Registry()


@entity(ts_registry, table="diff_ts_auto")
class TsAuto:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(20))
    note: Mapped[str | None] = column(String(20))


@entity(ts_registry, table="diff_ts_pair")
class TsPair:
    code: Mapped[str] = column(String(10), primary_key=True)
    num: Mapped[int] = column(primary_key=True, autoincrement=False)
    val: Mapped[str | None] = column(String(20))


class SaBase(DeclarativeBase):
    pass


class SaAuto(SaBase):
    __tablename__ = "diff_sa_auto"

    id: SaMapped[int] = mapped_column(primary_key=True)
    name: SaMapped[str] = mapped_column(String(20))
    note: SaMapped[str | None] = mapped_column(String(20))


class SaPair(SaBase):
    __tablename__ = "diff_sa_pair"

    code: SaMapped[str] = mapped_column(String(10), primary_key=True)
    num: SaMapped[int] = mapped_column(primary_key=True, autoincrement=False)
    val: SaMapped[str | None] = mapped_column(String(20))


#: the mapped attributes of each kind, in column order
COLUMNS: dict[str, tuple[str, ...]] = {
    "auto": ("id", "name", "note"),
    "pair": ("code", "num", "val"),
}
#: the primary-key attributes of each kind
PK: dict[str, tuple[str, ...]] = {"auto": ("id",), "pair": ("code", "num")}
