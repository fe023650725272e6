"""``_records.replace_record``: ``dataclasses.replace`` for the records users cannot build."""

from __future__ import annotations

import dataclasses

import pytest

from typed_session._records import NoPublicConstructor, replace_record


@dataclasses.dataclass(frozen=True, slots=True)
class Record(metaclass=NoPublicConstructor, obtained_by="ask the test"):
    name: str
    size: int = 0
    derived: int = dataclasses.field(init=False, default=1)


def _record() -> Record:
    made: Record = type.__call__(Record, "a", 2)
    return made


def test_a_record_refuses_a_call_and_names_the_way_out() -> None:
    with pytest.raises(TypeError, match=r"Record cannot be constructed directly.*ask the test"):
        Record("a")


def test_replace_record_changes_what_it_is_given() -> None:
    changed = replace_record(_record(), size=5)
    assert (changed.name, changed.size, changed.derived) == ("a", 5, 1)
    with pytest.raises(TypeError, match="cannot be constructed directly"):
        dataclasses.replace(_record(), size=5)


def test_replace_record_refuses_an_init_false_field_as_dataclasses_does() -> None:
    with pytest.raises(ValueError, match="derived is declared with init=False"):
        replace_record(_record(), derived=3)
