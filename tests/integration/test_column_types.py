"""Every Python type a ``Mapped[...]`` annotation maps by default survives a round trip."""

import enum
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_rows, recreate_tables, table_of
from typed_session import Mapped, Registry, column, entity

reg = Registry()


class TyColor(enum.Enum):
    RED = "red"
    GREEN = "green"


@entity(reg, table="ty_values")
class Values:
    id: Mapped[int] = column(primary_key=True, init=False)
    integer: Mapped[int]
    text_value: Mapped[str]
    flag: Mapped[bool]
    real: Mapped[float]
    amount: Mapped[Decimal]
    moment: Mapped[datetime]
    day: Mapped[date]
    clock: Mapped[time]
    blob: Mapped[bytes]
    uid: Mapped[uuid.UUID]
    color: Mapped[TyColor]
    maybe_text: Mapped[str | None] = column(default=None)
    maybe_number: Mapped[int | None] = column(default=None)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


# Values every backend stores exactly with the default column types.
SAMPLE: dict[str, Any] = {
    "integer": -2_000_000_000,
    "text_value": "Grüße, 世界",
    "flag": True,
    "real": 2.5,
    "amount": Decimal("12345.6789012345"),
    "moment": datetime(2024, 2, 29, 23, 59, 58),
    "day": date(1999, 12, 31),
    "clock": time(13, 45, 30),
    "blob": b"\x00\xffbinary\x10",
    "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "color": TyColor.GREEN,
    "maybe_text": None,
    "maybe_number": 7,
}


def make_values(**overrides: Any) -> Values:
    fields = {**SAMPLE, **overrides}
    return Values(
        integer=fields["integer"],
        text_value=fields["text_value"],
        flag=fields["flag"],
        real=fields["real"],
        amount=fields["amount"],
        moment=fields["moment"],
        day=fields["day"],
        clock=fields["clock"],
        blob=fields["blob"],
        uid=fields["uid"],
        color=fields["color"],
        maybe_text=fields["maybe_text"],
        maybe_number=fields["maybe_number"],
    )


def store(sessions: SessionFactory, values: Values) -> int:
    with sessions() as session:
        session.add(values)
        session.commit()
        return values.id


def reload(sessions: SessionFactory, values_id: int, attribute: str) -> object:
    """Read one attribute through a fresh session, so that it comes from the database."""
    with sessions() as session:
        return getattr(session.get_one(Values, values_id), attribute)


def read_column(engine: Engine, values_id: int, attribute: str) -> object:
    """Read one column with plain Core, no session involved."""
    col = table_of(Values).c[attribute]
    ((value,),) = db_rows(engine, select(col).where(table_of(Values).c.id == values_id))
    return value


@pytest.mark.parametrize("attribute", list(SAMPLE))
def test_value_round_trips_through_the_database(
    engine: Engine, sessions: SessionFactory, attribute: str
) -> None:
    values_id = store(sessions, make_values())
    expected = SAMPLE[attribute]

    loaded = reload(sessions, values_id, attribute)
    in_database = read_column(engine, values_id, attribute)

    assert loaded == expected
    assert type(loaded) is type(expected)
    assert in_database == expected


def test_nullable_columns_store_values_and_none(sessions: SessionFactory) -> None:
    with_values = store(sessions, make_values(maybe_text="here", maybe_number=None))
    without = store(sessions, make_values(maybe_text=None, maybe_number=0))

    assert reload(sessions, with_values, "maybe_text") == "here"
    assert reload(sessions, with_values, "maybe_number") is None
    assert reload(sessions, without, "maybe_text") is None
    assert reload(sessions, without, "maybe_number") == 0


def test_false_and_empty_values_round_trip(sessions: SessionFactory) -> None:
    values_id = store(sessions, make_values(flag=False, text_value="", blob=b"", integer=0))

    assert reload(sessions, values_id, "flag") is False
    assert reload(sessions, values_id, "text_value") == ""
    assert reload(sessions, values_id, "blob") == b""
    assert reload(sessions, values_id, "integer") == 0


def test_enum_is_stored_by_name(engine: Engine, sessions: SessionFactory) -> None:
    values_id = store(sessions, make_values(color=TyColor.RED))

    raw = db_rows(
        engine, select(table_of(Values).c.color.cast(Values.text_value.type).label("raw"))
    )

    assert raw == [("RED",)]
    assert reload(sessions, values_id, "color") is TyColor.RED


def test_float_keeps_double_precision(sessions: SessionFactory) -> None:
    third = 1 / 3
    values_id = store(sessions, make_values(real=third))

    assert reload(sessions, values_id, "real") == third


def test_datetime_keeps_microseconds(sessions: SessionFactory) -> None:
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456)
    values_id = store(sessions, make_values(moment=moment))

    assert reload(sessions, values_id, "moment") == moment


def test_time_keeps_microseconds(sessions: SessionFactory) -> None:
    clock = time(13, 45, 30, 654321)
    values_id = store(sessions, make_values(clock=clock))

    assert reload(sessions, values_id, "clock") == clock
