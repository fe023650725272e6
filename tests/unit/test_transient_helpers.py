"""make_transient / make_transient_to_detached, and writing to an expired attribute."""

import pytest
from sqlalchemy import Engine, select

from tests.conftest import SQLCapture
from typed_session import (
    Mapped,
    ObjectState,
    ObjectStateError,
    Registry,
    Session,
    column,
    entity,
    instance_state,
    make_transient,
    make_transient_to_detached,
)

reg = Registry()


@entity(reg, table="u_th_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)


@pytest.fixture
def engine(memory_engine: Engine) -> Engine:
    reg.create_all(memory_engine)
    with Session(memory_engine) as session:
        session.add(User(id=1, name="a", email="a@x"))
        session.commit()
    return memory_engine


def names(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [(r.id, r.name) for r in conn.execute(select(User.id, User.name))]


def test_make_transient_lets_a_deleted_object_be_inserted_again(engine: Engine) -> None:
    with Session(engine) as session:
        user = session.get_one(User, 1)
        assert user.name == "a"
        session.delete(user)
        session.commit()
        with pytest.raises(ObjectStateError, match="make_transient"):
            session.add(user)

        make_transient(user)
        assert instance_state(user).object_state is ObjectState.TRANSIENT
        assert instance_state(user).key is None
        session.add(user)
        session.commit()
    assert names(engine) == [(1, "a")]


def test_make_transient_forgets_expired_attributes(engine: Engine) -> None:
    with Session(engine) as session:
        user = session.get_one(User, 1)
        session.commit()  # expires everything
        make_transient(user)
        with pytest.raises(AttributeError, match="never assigned"):
            _ = user.name


def test_make_transient_to_detached_then_add_loads_the_rest(engine: Engine) -> None:
    user = User(id=1, name="renamed")
    del user.__dict__["email"]  # as if only id and name were known
    make_transient_to_detached(user)
    assert instance_state(user).object_state is ObjectState.DETACHED

    with Session(engine) as session:
        session.add(user)
        assert instance_state(user).object_state is ObjectState.PERSISTENT
        assert user.email == "a@x"  # loaded from the row
        user.name = "b"
        session.commit()
    assert names(engine) == [(1, "b")]


def test_make_transient_to_detached_refuses_what_it_cannot_do(engine: Engine) -> None:
    with Session(engine) as session:
        persistent = session.get_one(User, 1)
        with pytest.raises(ObjectStateError, match="must be transient"):
            make_transient_to_detached(persistent)
    keyless = User.__new__(User)
    keyless.name = "no key"
    with pytest.raises(ObjectStateError, match="no complete primary key"):
        make_transient_to_detached(keyless)


def test_assigning_an_expired_attribute_updates_it_and_loads_only_the_others(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        user = session.get_one(User, 1)
        session.commit()  # every attribute expired
        with SQLCapture(engine) as capture:
            user.name = "new"  # no load needed to write
            assert capture.statements == []
            session.flush()
            assert len(capture.matching("UPDATE")) == 1
            assert user.name == "new"
            assert user.email == "a@x"  # the other expired attributes still load
        session.commit()
    assert names(engine) == [(1, "new")]
