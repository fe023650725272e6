"""Value validation with pydantic (``validate=True``) and entity <-> model conversion."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Engine, String, insert, select
from sqlalchemy.exc import ArgumentError

from tests.conftest import SQLCapture
from typed_session import (
    FlushError,
    InvalidValueError,
    Mapped,
    Registry,
    Session,
    column,
    entity,
    inspect_entity,
)
from typed_session._validation import from_model, model_for, to_model

reg = Registry()


@entity(reg, table="v_users", validate=True)
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[Annotated[str, Field(max_length=10)]]
    score: Mapped[float] = column(default=0.0)
    balance: Mapped[Decimal] = column(default=Decimal(0))
    nickname: Mapped[Annotated[str, Field(min_length=2)] | None] = column(default=None)
    age: Mapped[Annotated[int, Strict(strict=False), Field(ge=0)]] = column(default=0)


@entity(reg, table="v_plain")
class Plain:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[Annotated[str, Field(max_length=10)]]


checked_reg = Registry(validate=True)


@entity(checked_reg, table="v_by_registry")
class ByRegistry:
    id: Mapped[int] = column(primary_key=True, init=False)
    count: Mapped[int] = column(default=0)


@entity(checked_reg, table="v_opted_out", validate=False)
class OptedOut:
    id: Mapped[int] = column(primary_key=True, init=False)
    count: Mapped[int] = column(default=0)


@pytest.fixture
def session(memory_engine: Engine) -> Session[Engine]:
    reg.create_all(memory_engine)
    return Session(memory_engine)


# -- construction and assignment ---------------------------------------------------------


def test_construction_refuses_a_value_that_breaks_a_constraint() -> None:
    with pytest.raises(InvalidValueError) as info:
        User(name="x" * 11)
    err = info.value
    assert (err.entity, err.attribute, err.value) == (User, "name", "x" * 11)
    assert str(err).startswith("invalid value for User.name: 'xxxxxxxxxxx' (String should")
    assert "at most 10 characters" in str(err)


def test_construction_refuses_a_value_of_the_wrong_type_strictly() -> None:
    with pytest.raises(InvalidValueError, match=r"User\.score: 'high' \(Input should be"):
        User(name="a", score="high")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(InvalidValueError, match=r"User\.balance: 1"):
        User(name="a", balance=1)  # type: ignore[arg-type]  # strict: no int for a Decimal


def test_the_stored_value_is_what_pydantic_returns() -> None:
    user = User(name="a", score=5, age="7")  # type: ignore[arg-type]  # Strict(False) on age
    assert user.score == 5.0
    assert type(user.score) is float
    assert user.age == 7


def test_an_optional_constrained_attribute_takes_none_and_checks_values() -> None:
    assert User(name="a", nickname=None).nickname is None
    with pytest.raises(InvalidValueError, match="at least 2 characters"):
        User(name="a", nickname="x")


def test_assignment_refuses_before_anything_is_recorded(session: Session[Engine]) -> None:
    user = User(name="ann")
    session.add(user)
    session.commit()
    assert user.name == "ann"
    with pytest.raises(InvalidValueError, match=r"User\.age: -1 .*greater than or equal to 0"):
        user.age = -1
    assert user.age == 0
    assert user not in session.dirty
    assert not session.is_modified(user)
    user.age = 3
    assert user in session.dirty


def test_a_long_value_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidValueError) as info:
        User(name="y" * 500)
    assert len(str(info.value)) < 300
    assert info.value.value == "y" * 500


def test_entities_without_validate_check_nothing() -> None:
    plain = Plain(name="z" * 50)
    plain.name = 5  # type: ignore[assignment]  # no check at run time without validate
    assert plain.__dict__["name"] == 5


def test_the_registry_default_and_the_entity_override() -> None:
    with pytest.raises(InvalidValueError, match=r"ByRegistry\.count"):
        ByRegistry(count="1")  # type: ignore[arg-type]  # the point of the test
    assert OptedOut(count="1").count == "1"  # type: ignore[arg-type, comparison-overlap]
    assert inspect_entity(ByRegistry).check_values is not None
    assert inspect_entity(OptedOut).check_values is None


def test_an_annotated_attribute_gets_the_column_type_of_its_base_type() -> None:
    table = inspect_entity(User).table
    assert isinstance(table.c.name.type, String)
    assert not table.c.name.nullable
    assert isinstance(table.c.nickname.type, String)
    assert table.c.nickname.nullable


def test_an_annotation_pydantic_cannot_build_is_refused_when_mapped() -> None:
    with pytest.raises(ArgumentError, match=r"Weird\.code: pydantic cannot validate"):

        @entity(Registry(), table="v_weird", validate=True)
        class Weird:
            id: Mapped[int] = column(primary_key=True)
            code: Mapped[Annotated[str, Field(pattern="(")]]


# -- before the flush --------------------------------------------------------------------


def test_a_value_written_behind_the_instrumentation_is_refused_before_any_sql(
    session: Session[Engine], memory_engine: Engine
) -> None:
    user = User(name="ann")
    session.add(user)
    user.__dict__["name"] = "n" * 20
    with SQLCapture(memory_engine) as capture, pytest.raises(FlushError) as info:
        session.flush()
    assert capture.statements == []
    assert info.value.instance is user
    assert isinstance(info.value.__cause__, InvalidValueError)
    assert "User.name: 'nnnnnnnnnnnnnnnnnnnn'" in str(info.value)
    # the session is unchanged and usable: fix the value, flush again
    assert session.is_active
    assert user in session.new
    user.name = "ann"
    session.flush()
    assert user in session
    assert user not in session.new


def test_a_changed_attribute_is_checked_again_at_flush(
    session: Session[Engine], memory_engine: Engine
) -> None:
    user = User(name="ann")
    session.add(user)
    session.commit()
    assert user.id == 1  # loaded: the flush has nothing to read first
    user.name = "bob"
    user.__dict__["name"] = "b" * 11  # after the checked assignment recorded the change
    with SQLCapture(memory_engine) as capture, pytest.raises(FlushError, match=r"User\.name"):
        session.flush()
    assert capture.statements == []
    assert session.is_active
    assert user in session.dirty
    user.name = "bob"
    session.commit()
    assert session.scalars(select(User.name)).all() == ["bob"]


def test_loaded_rows_are_not_validated(session: Session[Engine]) -> None:
    session.execute(insert(inspect_entity(User).table), [{"name": "r" * 40, "age": -5}])
    loaded = session.scalars(select(User)).one()
    assert loaded.name == "r" * 40
    assert loaded.age == -5


# -- pydantic models ---------------------------------------------------------------------


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class UserIn(BaseModel):
    name: str
    score: float = 1.5


def test_to_model_reads_an_entity_into_a_given_model(session: Session[Engine]) -> None:
    user = User(name="ann")
    session.add(user)
    session.commit()  # expired: the model's reads load it
    out = to_model(user, UserOut)
    assert out == UserOut(id=user.id, name="ann")


def test_to_model_reports_an_attribute_without_a_value() -> None:
    with pytest.raises(PydanticValidationError, match="id"):
        to_model(User(name="ann"), UserOut)


def test_the_generated_model_has_the_entity_fields_and_constraints() -> None:
    model = model_for(User)
    assert model is model_for(User)
    assert list(model.model_fields) == ["id", "name", "score", "balance", "nickname", "age"]
    dumped = to_model(User(name="ann")).model_dump()
    assert dumped == {
        "id": None,
        "name": "ann",
        "score": 0.0,
        "balance": Decimal(0),
        "nickname": None,
        "age": 0,
    }
    with pytest.raises(PydanticValidationError, match="at most 10 characters"):
        model(name="x" * 11)


def test_from_model_builds_an_entity_with_the_given_fields() -> None:
    user = from_model(User, UserIn(name="cy"))
    assert (user.name, user.score, user.balance) == ("cy", 1.5, Decimal(0))
    generated = from_model(User, model_for(User)(name="dee"))
    assert "id" not in generated.__dict__  # None, not given: left to the database
    assert from_model(User, model_for(User)(name="dee", nickname=None)).nickname is None


def test_from_model_assigns_attributes_the_constructor_does_not_take() -> None:
    user = from_model(User, model_for(User)(id=7, name="eve"))
    assert (user.id, user.name) == (7, "eve")


def test_from_model_validates_through_the_entity() -> None:
    with pytest.raises(InvalidValueError, match=r"User\.name"):
        from_model(User, UserIn(name="f" * 11))


def test_from_model_refuses_fields_the_entity_does_not_map() -> None:
    class Signup(BaseModel):
        name: str
        password: str

    with pytest.raises(ArgumentError, match=r"\['password'\] are not mapped attributes of User"):
        from_model(User, Signup(name="a", password="p"))


# -- bulk operations ---------------------------------------------------------------------


def test_bulk_rows_of_a_validated_entity_are_checked_before_any_sql(
    session: Session[Engine], memory_engine: Engine
) -> None:
    with SQLCapture(memory_engine) as capture:
        with pytest.raises(FlushError, match=r"cannot write the row .*User\.name") as info:
            session.bulk_insert_mappings(User, [{"name": "ok"}, {"name": "n" * 11}])
        assert isinstance(info.value.__cause__, InvalidValueError)
        with pytest.raises(FlushError, match=r"User\.age: -3"):
            session.bulk_update_mappings(User, [{"id": 1, "age": -3}])
        assert capture.statements == []
    assert session.is_active
    session.bulk_insert_mappings(User, [{"name": "ok", "nickname": None}])  # None: left out
    session.bulk_update_mappings(User, [{"id": 1, "age": 4}])
    assert session.scalars(select(User.age)).all() == [4]
