"""``Query[T]`` as a builder: what it refuses and the statement it builds, before any SQL."""

from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import ArgumentError, InvalidRequestError

from typed_session import Mapped, Query, Registry, Session, UnmappedClassError, column, entity

reg = Registry()


@entity(reg, table="u_q_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    team: Mapped[str] = column(default="red")


@entity(reg, table="u_q_orders")
class Order:
    id: Mapped[int] = column(primary_key=True, init=False)


def _sql(statement: Any) -> str:
    return str(statement.compile(compile_kwargs={"literal_binds": True}))


def test_query_is_a_query_of_the_entity_over_select() -> None:
    session = Session()
    query = session.query(User)

    assert isinstance(query, Query)
    assert _sql(query.statement) == _sql(select(User))
    assert query.session is session
    assert repr(query).startswith("<Query of User: SELECT")


def test_the_statement_has_every_part_in_order() -> None:
    query = (
        Session()
        .query(User)
        .filter(User.id > 1)
        .filter_by(name="ann", team="red")
        .order_by(User.name)
        .order_by(User.id.desc())
        .limit(5)
        .offset(10)
    )

    expected = (
        select(User)
        .where(User.id > 1, User.name == "ann", User.team == "red")
        .order_by(User.name, User.id.desc())
        .limit(5)
        .offset(10)
    )
    assert _sql(query.statement) == _sql(expected)


def test_each_method_returns_a_new_query_and_leaves_this_one_alone() -> None:
    base = Session().query(User)
    before = _sql(base.statement)

    refined = [
        base.filter(User.id == 1),
        base.filter_by(name="x"),
        base.order_by(User.name),
        base.limit(1),
        base.offset(1),
        base.options(),
    ]

    assert all(q is not base for q in refined)
    assert _sql(base.statement) == before


def test_filter_by_an_unknown_attribute_names_the_entity_and_its_attributes() -> None:
    query = Session().query(User)

    with pytest.raises(InvalidRequestError) as caught:
        query.filter_by(name="ann", nam="ann", email="x")

    message = str(caught.value)
    assert message.startswith('Entity namespace for "User" has no property')
    assert "'nam', 'email'" in message
    assert "(id, name, team)" in message
    assert "filter()" in message


def test_query_of_a_class_that_is_not_an_entity_is_refused() -> None:
    with pytest.raises(UnmappedClassError, match="decorate it with @entity"):
        Session().query(int)


@pytest.mark.parametrize(
    ("args", "shown"),
    [((User, Order), "Order"), ((User, Order.id), "u_q_orders.id"), ((User.name,), "name")],
    ids=["two entities", "an entity and a column", "a column"],
)
def test_query_takes_one_entity_class_only(args: tuple[Any, ...], shown: str) -> None:
    session: Any = Session()  # what a caller without a type checker could pass

    with pytest.raises(ArgumentError, match=r"query\(\) takes one entity class") as caught:
        session.query(*args)

    assert shown in str(caught.value)
    assert "session.execute(select(" in str(caught.value)


def test_a_query_and_its_count_run_on_the_entity_s_bind() -> None:
    default, users_db = create_engine("sqlite://"), create_engine("sqlite://")
    reg.create_all(users_db)  # the users table exists only there
    try:
        with Session(default, binds={User: users_db}) as session:
            session.add(User(name="ann"))

            assert session.query(User).count() == 1
            assert [u.name for u in session.query(User).filter_by(name="ann")] == ["ann"]
    finally:
        default.dispose()
        users_db.dispose()
