"""``sessionmaker``: options validated and merged, configure(), class_, repr, begin()."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import ArgumentError

from typed_session import (
    Session,
    SessionConfig,
    SessionConfigError,
    SessionTransaction,
    TransactionState,
    sessionmaker,
)


class AppSession(Session[Engine]):
    made = 0

    def __init__(self, bind: Engine | None = None, **options: Any) -> None:
        super().__init__(bind, **options)
        AppSession.made += 1

    def tenant(self) -> object:
        return self.info.get("tenant")


@pytest.fixture
def other_engine() -> Engine:
    return create_engine("sqlite://")


# -- making sessions ------------------------------------------------------------------------


def test_a_call_makes_a_session_on_the_factorys_bind(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine)
    session = factory()
    assert type(session) is Session
    assert session.bind is memory_engine
    assert session.config == SessionConfig()
    assert factory() is not session


def test_bind_can_be_given_by_keyword(memory_engine: Engine) -> None:
    assert sessionmaker(bind=memory_engine)().bind is memory_engine


def test_a_factory_without_bind_makes_unbound_sessions() -> None:
    factory = sessionmaker()
    assert factory.bind is None
    assert factory().bind is None


def test_the_sessions_take_the_factorys_options(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, autoflush=False, expire_on_commit=False, twophase=True)
    session = factory()
    assert session.autoflush is False
    assert session.expire_on_commit is False
    assert session.config.twophase is True
    assert factory.config == SessionConfig(autoflush=False, expire_on_commit=False, twophase=True)


def test_a_call_overrides_options_for_that_session_only(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, autoflush=False)
    overridden = factory(autoflush=True, expire_on_commit=False)
    assert overridden.autoflush is True
    assert overridden.expire_on_commit is False
    assert factory().autoflush is False
    assert factory().expire_on_commit is True
    assert factory.config == SessionConfig(autoflush=False)


def test_a_call_overrides_the_bind_for_that_session_only(
    memory_engine: Engine, other_engine: Engine
) -> None:
    factory = sessionmaker(memory_engine)
    assert factory(bind=other_engine).bind is other_engine
    with memory_engine.connect() as conn:
        assert factory(bind=conn).bind is conn
    assert factory().bind is memory_engine


def test_a_call_with_bind_none_makes_an_unbound_session(memory_engine: Engine) -> None:
    # as the seed: an explicit bind=None overrides the factory's bind
    assert sessionmaker(memory_engine)(bind=None).bind is None  # type: ignore[call-overload]


def test_the_factory_keeps_an_unbound_session_from_its_bind_override() -> None:
    factory = sessionmaker()
    engine = create_engine("sqlite://")
    assert factory(bind=engine).bind is engine
    assert factory.bind is None


# -- info ---------------------------------------------------------------------------------


def test_info_of_the_factory_and_of_the_call_are_merged_call_wins(
    memory_engine: Engine,
) -> None:
    factory = sessionmaker(memory_engine, info={"app": "x", "tenant": 1})
    session = factory(info={"tenant": 2, "request": 7})
    assert session.info == {"app": "x", "tenant": 2, "request": 7}
    assert factory.config.info == {"app": "x", "tenant": 1}


def test_every_session_has_an_info_dict_of_its_own(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, info={"app": "x"})
    first, second = factory(), factory()
    first.info["mine"] = True
    assert second.info == {"app": "x"}
    assert factory.config.info == {"app": "x"}
    assert first.info is not factory.config.info
    merged = factory(info={"b": 1})
    merged.info["c"] = 2
    assert factory().info == {"app": "x"}


def test_the_factory_copies_the_info_it_is_given(memory_engine: Engine) -> None:
    given: dict[str, object] = {"app": "x"}
    factory = sessionmaker(memory_engine, info=given)
    given["later"] = True
    assert factory().info == {"app": "x"}


def test_info_of_a_call_alone_when_the_factory_has_none(memory_engine: Engine) -> None:
    call_info = {"request": 1}
    session = sessionmaker(memory_engine)(info=call_info)
    assert session.info == call_info
    assert session.info is not call_info


def test_info_none_in_a_call_keeps_the_factorys(memory_engine: Engine) -> None:
    assert sessionmaker(memory_engine, info={"a": 1})(info=None).info == {"a": 1}


def test_a_session_without_info_anywhere_has_an_empty_dict(memory_engine: Engine) -> None:
    assert sessionmaker(memory_engine)().info == {}


# -- validation -------------------------------------------------------------------------


def test_a_misspelt_option_is_named_with_a_suggestion(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError) as info:
        sessionmaker(memory_engine, expire_on_comit=False)  # type: ignore[call-overload]
    message = str(info.value)
    assert message.startswith("sessionmaker() got unknown option(s) 'expire_on_comit'")
    assert "did you mean 'expire_on_commit'?" in message
    assert "the options are: bind, class_, autoflush, expire_on_commit, twophase, info" in (message)


def test_a_misspelt_factory_parameter_is_suggested(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError, match=r"'klass' \(did you mean 'class_'\?\)"):
        sessionmaker(memory_engine, klass=AppSession)  # type: ignore[call-overload]


def test_a_wrong_typed_option_is_named(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError) as info:
        sessionmaker(memory_engine, autoflush="yes")  # type: ignore[call-overload]
    message = str(info.value)
    assert message.startswith("sessionmaker() got a bad option value")
    assert "option 'autoflush'" in message
    assert "(got 'yes')" in message


def test_a_retired_option_says_what_replaced_it(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError) as info:
        sessionmaker(memory_engine, autocommit=False)  # type: ignore[call-overload]
    message = str(info.value)
    assert "'autocommit' (retired: sessions begin a transaction by themselves" in message
    assert "`with session.begin():`" in message


def test_a_call_validates_its_overrides(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine)
    with pytest.raises(SessionConfigError) as info:
        factory(autoflsh=False)  # type: ignore[call-overload]
    message = str(info.value)
    assert message.startswith("sessionmaker.__call__() got unknown option(s) 'autoflsh'")
    assert "did you mean 'autoflush'?" in message
    assert "the options are: bind, autoflush," in message
    with pytest.raises(SessionConfigError, match=r"'bnd' \(did you mean 'bind'\?\)"):
        factory(bnd=None)  # type: ignore[call-overload]
    with pytest.raises(SessionConfigError, match=r"option 'expire_on_commit'.*\(got 1\)"):
        factory(expire_on_commit=1)  # type: ignore[call-overload]
    with pytest.raises(SessionConfigError, match=r"option 'info'"):
        factory(info="x")  # type: ignore[call-overload]


@pytest.mark.parametrize("bind", ["sqlite://", 1, object()])
def test_a_bind_that_is_not_an_engine_or_connection_is_refused(
    memory_engine: Engine, bind: object
) -> None:
    pattern = r"bind must be an Engine or a Connection, not .*create_engine\(url\)"
    with pytest.raises(ArgumentError, match=r"^sessionmaker\(\) " + pattern):
        sessionmaker(bind)  # type: ignore[call-overload]
    factory = sessionmaker(memory_engine)
    with pytest.raises(ArgumentError, match=r"^sessionmaker\.__call__\(\) " + pattern):
        factory(bind=bind)  # type: ignore[call-overload]
    with pytest.raises(ArgumentError, match=r"^sessionmaker\.configure\(\) " + pattern):
        factory.configure(bind=bind)  # type: ignore[call-overload]
    assert factory.bind is memory_engine


# -- class_ -------------------------------------------------------------------------------


def test_class_is_the_class_of_every_session_made(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, class_=AppSession, info={"tenant": 3})
    session = factory()
    # made as is: no subclass per factory (the factory's listeners will live on the
    # factory, not on a class)
    assert type(session) is AppSession
    assert factory.class_ is AppSession
    assert session.tenant() == 3
    assert session.bind is memory_engine


def test_class_defaults_to_session(memory_engine: Engine) -> None:
    assert sessionmaker(memory_engine).class_ is Session


def test_class_constructor_runs_for_every_session(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, class_=AppSession)
    before = AppSession.made
    factory()
    factory(expire_on_commit=False)
    assert AppSession.made == before + 2


@pytest.mark.parametrize("class_", [int, object(), lambda bind, **kw: Session(bind, **kw)])
def test_class_must_be_a_session_class(memory_engine: Engine, class_: Any) -> None:
    with pytest.raises(ArgumentError) as info:
        sessionmaker(memory_engine, class_=class_)
    message = str(info.value)
    assert message.startswith("sessionmaker() class_ must be Session or a subclass of it")
    assert "subclass Session and pass the subclass" in message


def test_a_session_subclass_works_as_a_session(memory_engine: Engine) -> None:
    with sessionmaker(memory_engine, class_=AppSession).begin() as session:
        assert session.tenant() is None
        assert session.in_transaction()
    assert not session.in_transaction()


# -- configure ------------------------------------------------------------------------------


def test_configure_changes_the_sessions_made_afterwards(memory_engine: Engine) -> None:
    factory = sessionmaker()
    before = factory()
    factory.configure(bind=memory_engine, autoflush=False)
    after = factory()
    assert after.bind is memory_engine
    assert after.autoflush is False
    assert before.bind is None
    assert before.autoflush is True


def test_configure_replaces_the_config_object_without_changing_it(
    memory_engine: Engine,
) -> None:
    factory = sessionmaker(memory_engine, expire_on_commit=False)
    old = factory.config
    factory.configure(autoflush=False)
    assert factory.config is not old
    assert old == SessionConfig(expire_on_commit=False)
    assert factory.config == SessionConfig(autoflush=False, expire_on_commit=False)


def test_configure_keeps_the_bind_unless_given(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine)
    factory.configure(twophase=True)
    assert factory.bind is memory_engine
    factory.configure(bind=None)
    assert factory.bind is None


def test_configure_replaces_info_as_the_seed_does(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, info={"a": 1})
    factory.configure(info={"b": 2})
    assert factory().info == {"b": 2}
    factory.configure(info=None)
    assert factory().info == {}


def test_a_refused_configure_leaves_the_factory_as_it_was(
    memory_engine: Engine, other_engine: Engine
) -> None:
    factory = sessionmaker(memory_engine, autoflush=False)
    config = factory.config
    with pytest.raises(SessionConfigError) as info:
        factory.configure(bind=other_engine, autoflush=False, expire_on_comit=False)  # type: ignore[call-overload]
    message = str(info.value)
    assert message.startswith("sessionmaker.configure() got unknown option(s)")
    assert "did you mean 'expire_on_commit'?" in message
    assert "the options are: bind, autoflush," in message  # class_ is set once
    with pytest.raises(SessionConfigError, match="option 'twophase'"):
        factory.configure(bind=other_engine, twophase="no")  # type: ignore[call-overload]
    assert factory.config is config
    assert factory.bind is memory_engine


# -- repr and begin ----------------------------------------------------------------------


def test_repr_names_class_bind_and_every_option() -> None:
    factory = sessionmaker(create_engine("sqlite://"), info={"a": 1})
    assert repr(factory) == (
        "sessionmaker(class_='Session', bind=Engine(sqlite://), autoflush=True, "
        "expire_on_commit=True, twophase=False, info={'a': 1}, "
        "join_transaction_mode='conditional_savepoint', execution_options=None, "
        "binds=None, bind_resolver=None)"
    )
    factory.configure(bind=None, autoflush=False)
    assert repr(factory) == (
        "sessionmaker(class_='Session', bind=None, autoflush=False, "
        "expire_on_commit=True, twophase=False, info={'a': 1}, "
        "join_transaction_mode='conditional_savepoint', execution_options=None, "
        "binds=None, bind_resolver=None)"
    )
    assert repr(sessionmaker(class_=AppSession)).startswith("sessionmaker(class_='AppSession',")


def test_begin_makes_the_session_when_the_block_starts(memory_engine: Engine) -> None:
    factory = sessionmaker(memory_engine, class_=AppSession)
    before = AppSession.made
    block = factory.begin()
    assert AppSession.made == before
    with block as session:
        assert AppSession.made == before + 1
        assert session.get_transaction() is not None


def test_begin_commits_and_closes(memory_engine: Engine) -> None:
    with sessionmaker(memory_engine).begin() as session:
        transaction = session.get_transaction()
        assert transaction is not None
    assert not transaction.is_active
    assert session.get_transaction() is None


def test_begin_rolls_back_and_closes_on_error(memory_engine: Engine) -> None:
    seen: list[tuple[Session[Engine], SessionTransaction | None]] = []

    def fail_inside() -> None:
        with sessionmaker(memory_engine).begin() as session:
            seen.append((session, session.get_transaction()))
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    [(session, transaction)] = seen
    assert transaction is not None
    assert transaction.state is TransactionState.CLOSED
    assert session.get_transaction() is None
