"""``column()`` defaults checked against the annotation, by both checkers."""

from __future__ import annotations

import datetime
import enum
from typing import assert_type

from sqlalchemy import JSON, String

from typed_session import Mapped, Registry, column, entity

reg = Registry()


class Status(enum.Enum):
    ACTIVE = "active"
    GONE = "gone"


@entity(reg, table="td_accepted")
class Accepted:
    id: Mapped[int] = column(primary_key=True, init=False)
    count: Mapped[int] = column(default=0)
    ratio: Mapped[float] = column(default=0)  # an int is a float, as everywhere
    note: Mapped[str | None] = column(default=None)
    label: Mapped[str] = column(String(20), default="x")
    status: Mapped[Status] = column(default=Status.ACTIVE)
    created: Mapped[datetime.datetime] = column(default_factory=datetime.datetime.now)
    tags: Mapped[list[str]] = column(JSON, default_factory=list)
    name: Mapped[str] = column(unique=True)


def construct() -> None:
    assert_type(Accepted(name="n"), Accepted)
    assert_type(Accepted(name="n", count=2, note="x", tags=["a"]).tags, list[str])


@entity(reg, table="td_rejected")
class Rejected:
    id: Mapped[int] = column(primary_key=True)
    # each line must keep failing under both mypy and basedpyright
    wrong: Mapped[int] = column(default="a")  # type: ignore[arg-type]
    not_optional: Mapped[int] = column(default=None)  # type: ignore[arg-type]
    # a callable is not a value: default_factory=datetime.datetime.now is the way
    now: Mapped[datetime.datetime] = column(default=datetime.datetime.now)  # type: ignore[arg-type]
    factory: Mapped[int] = column(default_factory=str)  # type: ignore[arg-type]
    both: Mapped[int] = column(default=1, default_factory=int)  # type: ignore[call-overload]
