"""The bind map and ``get_bind``'s order, step by step (issue 16, items 1 and 2)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import ArgumentError, UnboundExecutionError

from typed_session import Mapped, Registry, Session, column, entity, inspect_entity, mixin
from typed_session._binds import BindMap

reg = Registry()


@mixin
class Audited:
    pass


@entity(reg, table="bm_users")
class User(Audited):
    id: Mapped[int] = column(primary_key=True)


@entity(reg, table="bm_orders")
class Order:
    id: Mapped[int] = column(primary_key=True)


audit = Table("bm_audit", MetaData(), Column("id", Integer, primary_key=True))

A, B, C, D = (create_engine("sqlite://") for _ in range(4))


def test_keys_must_be_classes_or_tables() -> None:
    with pytest.raises(ArgumentError, match=r"^Not an acceptable bind target: 'users'"):
        BindMap.of({"users": A})
    with pytest.raises(ArgumentError, match="must be an Engine or a Connection"):
        BindMap.of({User: "sqlite://"})
    with pytest.raises(ArgumentError, match="Not an acceptable bind target"):
        Session(binds={42: A})


def test_the_map_is_immutable_and_replaced_by_bind_mapper_and_bind_table() -> None:
    session = Session(binds={User: A})
    before = session.binds
    session.bind_mapper(Order, B)
    session.bind_table(audit, C)
    assert before.classes == {User: A}
    assert session.binds.classes == {User: A, Order: B}
    assert session.binds.tables[audit] is C
    with pytest.raises(TypeError):
        before.classes[Order] = B  # type: ignore[index]  # read-only, on purpose


def test_step_1_a_resolver_comes_first_and_none_defers() -> None:
    calls: list[tuple[Any, Any]] = []

    def resolver(entity: type[Any] | None, clause: object | None) -> Engine | None:
        calls.append((entity, clause))
        return D if entity is Order else None

    session = Session(A, binds={Order: B, User: C}, bind_resolver=resolver)
    assert session.get_bind(Order) is D
    assert session.get_bind(User) is C
    assert calls == [(Order, None), (User, None)]


def test_step_2_the_class_then_its_mro() -> None:
    session = Session(A, binds={Audited: B})
    assert session.get_bind(User) is B  # bound through its base class
    assert session.get_bind(Order) is A


def test_step_2_a_statement_finds_the_bind_of_the_entity_it_uses_through_its_mro() -> None:
    session = Session(A, binds={Audited: B, inspect_entity(User).table: C})
    assert session.get_bind(clause=select(User)) is B  # the class first, as SQLAlchemy
    assert session.get_bind(clause=update(User).values(id=2)) is B
    assert session.get_bind(clause=select(Order)) is A
    assert Session(binds={Audited: B}).get_bind(clause=select(User).where(User.id == 1)) is B
    # an entity inside a subquery (Query.count()) or a join is found by walking the statement
    counted = select(func.count()).select_from(select(User).subquery())
    assert session.get_bind(clause=counted) is B
    joined = select(audit.c.id).join(User, audit.c.id == User.id)
    assert session.get_bind(clause=joined) is B


def test_step_3_the_entitys_table_then_the_statements_tables() -> None:
    users = inspect_entity(User).table
    session = Session(A, binds={users: B, audit: C})
    assert session.get_bind(User) is B  # its table is bound
    assert session.get_bind(clause=select(User)) is B
    assert session.get_bind(clause=select(audit).join(users, audit.c.id == users.c.id)) is C
    assert session.get_bind(clause=insert(audit)) is C
    assert session.get_bind(clause=update(User).values(id=2)) is B
    assert session.get_bind(clause=delete(audit)) is C
    assert session.get_bind(clause=select(Order)) is A


def test_a_bound_class_binds_its_table_for_statements() -> None:
    session = Session(binds={Order: B})
    assert session.get_bind(clause=select(inspect_entity(Order).table)) is B


def test_step_4_the_sessions_own_bind_then_an_error_naming_what_was_looked_for() -> None:
    assert Session(A, binds={Order: B}).get_bind(User) is A
    with pytest.raises(UnboundExecutionError, match=r"^Could not locate a bind .* Mapper\(User"):
        Session(binds={Order: B}).get_bind(User)
    with pytest.raises(UnboundExecutionError, match="SQL expression or this Session"):
        Session(binds={Order: B}).get_bind(clause=select(User))
