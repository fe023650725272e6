"""Edge cases of rollback and expiry found in review: each would lose data without its fix."""

from sqlalchemy import Engine, select

from typed_session import Mapped, ObjectState, Registry, Session, column, entity, instance_state

reg = Registry()


@entity(reg, table="u_edge_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]


def test_rollback_of_an_insert_that_was_rekeyed_leaves_the_object_transient(
    memory_engine: Engine,
) -> None:
    reg.create_all(memory_engine)
    session = Session(memory_engine)
    user = User(id=1, name="a")
    session.add(user)
    session.flush()
    user.id = 10
    session.flush()

    session.rollback()

    assert instance_state(user).object_state is ObjectState.TRANSIENT
    assert instance_state(user).key is None
    other = Session(memory_engine)
    other.add(user)
    other.commit()
    assert other.scalars(select(User.id)).all() == [10]


def test_expiry_keeps_attributes_that_are_not_mapped(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    with Session(memory_engine) as session:
        session.add(User(id=1, name="a"))
        session.commit()
        user = session.get_one(User, 1)
        user.note = "mine"  # type: ignore[attr-defined]  # a plain, unmapped attribute
        session.expire(user, ["name"])
        session.expire_all()
        assert user.__dict__["note"] == "mine"
        assert user.name == "a"


def test_rollback_undoes_a_flushed_delete_of_an_object_expunged_since(
    memory_engine: Engine,
) -> None:
    reg.create_all(memory_engine)
    with Session(memory_engine) as session:
        session.add(User(id=1, name="a"))
        session.commit()
        user = session.get_one(User, 1)
        session.delete(user)
        session.flush()
        session.expunge(user)

        session.rollback()

        assert not instance_state(user).was_deleted
        assert instance_state(user).object_state is ObjectState.DETACHED
    with Session(memory_engine) as other:
        other.add(user)
        assert instance_state(user).object_state is ObjectState.PERSISTENT
        assert user.name == "a"
