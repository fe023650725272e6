"""Validated entities as a user writes them: ``Annotated`` constraints, model conversion."""

from __future__ import annotations

from typing import Annotated, assert_type

from pydantic import BaseModel, ConfigDict, Field

from typed_session import Mapped, Registry, column, entity, from_model, model_for, to_model

reg = Registry(validate=True)


@entity(reg, table="tcv_users", validate=True)
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[Annotated[str, Field(max_length=50)]]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


def constrained() -> None:
    user = User(name="x")
    assert_type(user.name, str)
    user.name = "y"
    User(name=1)  # type: ignore[arg-type]  # an Annotated[str, ...] still takes a str only


def convert(user: User) -> None:
    assert_type(to_model(user, UserOut), UserOut)
    assert_type(to_model(user), BaseModel)
    assert_type(from_model(User, UserOut(id=1, name="a")), User)
    assert_type(model_for(User), type[BaseModel])
