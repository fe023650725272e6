"""``SessionConfig`` and ``validate_options``: the session's options, validated and frozen."""

from __future__ import annotations

from typing import Any, get_type_hints

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError

from typed_session import Session, SessionConfig, SessionConfigError, SessionOptions
from typed_session._config import validate_options


def test_defaults() -> None:
    config = SessionConfig()
    assert config.autoflush is True
    assert config.expire_on_commit is True
    assert config.info is None


def test_config_is_frozen() -> None:
    config = SessionConfig()
    with pytest.raises(ValidationError, match="frozen"):
        config.autoflush = False
    assert config.autoflush is True


def test_config_changes_by_copy() -> None:
    config = SessionConfig()
    changed = config.model_copy(update={"autoflush": False})
    assert changed.autoflush is False
    assert config.autoflush is True


def test_config_equality_by_value() -> None:
    assert SessionConfig(autoflush=False) == SessionConfig(autoflush=False)
    assert SessionConfig(autoflush=False) != SessionConfig()


def test_config_forbids_extra_fields() -> None:
    with pytest.raises(ValidationError, match="autoflsh"):
        SessionConfig(autoflsh=True)  # type: ignore[call-arg]


def test_validate_options_returns_a_config() -> None:
    config = validate_options("Session", {"autoflush": False, "expire_on_commit": False})
    assert config == SessionConfig(autoflush=False, expire_on_commit=False)


def test_validate_options_empty() -> None:
    assert validate_options("Session", {}) == SessionConfig()


def test_unknown_option_with_suggestion() -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("Session", {"autoflsh": True})
    message = str(info.value)
    assert message.startswith("Session() got unknown option(s) 'autoflsh'")
    assert "did you mean 'autoflush'?" in message
    assert "the options are: autoflush, expire_on_commit, twophase, info" in message


def test_unknown_option_without_close_match() -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("sessionmaker", {"zzz": 1})
    message = str(info.value)
    assert message.startswith("sessionmaker() got unknown option(s) 'zzz'")
    assert "did you mean" not in message
    assert "autoflush, expire_on_commit, twophase, info" in message


def test_every_unknown_option_is_named() -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("Session", {"expire_on_comit": True, "bogus": 1, "autoflush": True})
    message = str(info.value)
    assert "'expire_on_comit' (did you mean 'expire_on_commit'?)" in message
    assert "'bogus'" in message


@pytest.mark.parametrize("option", ["autoflush", "expire_on_commit"])
@pytest.mark.parametrize("value", ["yes", 1, 0, None, "true"])
def test_bool_options_are_strict(option: str, value: object) -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("Session", {option: value})
    message = str(info.value)
    assert f"option {option!r}" in message
    assert f"(got {value!r})" in message


@pytest.mark.parametrize("info_value", [{}, {"tenant": 1}, {1: object()}, None])
def test_info_accepts_a_dict_or_none(info_value: dict[Any, Any] | None) -> None:
    assert validate_options("Session", {"info": info_value}).info == info_value


def test_info_rejects_a_non_dict() -> None:
    with pytest.raises(SessionConfigError, match=r"option 'info'"):
        validate_options("Session", {"info": "x"})


def test_session_config_error_is_an_argument_error() -> None:
    assert issubclass(SessionConfigError, ArgumentError)


def test_session_validates_its_options(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError, match="did you mean 'autoflush'"):
        Session(memory_engine, autoflsh=True)  # type: ignore[call-arg]
    with pytest.raises(SessionConfigError, match="option 'autoflush'"):
        Session(memory_engine, autoflush="yes")  # type: ignore[arg-type]


def test_session_takes_its_options(memory_engine: Engine) -> None:
    info = {"tenant": 1}
    with Session(memory_engine, autoflush=False, expire_on_commit=False, info=info) as s:
        assert s.autoflush is False
        assert s.expire_on_commit is False
        assert s.info == info
        assert s.info is not info  # the session's own copy
        assert s.config == SessionConfig(autoflush=False, expire_on_commit=False, info=info)


def test_a_retired_option_to_session_says_so_too(memory_engine: Engine) -> None:
    with pytest.raises(SessionConfigError, match=r"'weak_identity_map' \(retired: "):
        Session(memory_engine, weak_identity_map=False)  # type: ignore[call-arg]


def test_a_retired_option_is_named_with_what_replaced_it() -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("Session", {"autocommit": True, "extension": None})
    message = str(info.value)
    assert "'autocommit' (retired: sessions begin a transaction by themselves" in message
    assert "`with session.begin():`" in message
    assert "'extension' (retired: typed events replace SessionExtension)" in message


def test_other_parameters_are_suggested_and_listed() -> None:
    with pytest.raises(SessionConfigError) as info:
        validate_options("f", {"bnd": 1}, parameters=("bind",))
    message = str(info.value)
    assert "'bnd' (did you mean 'bind'?)" in message
    assert "the options are: bind, autoflush, expire_on_commit, twophase, info" in message


def test_other_parameters_are_not_options() -> None:
    with pytest.raises(SessionConfigError, match="unknown option"):
        validate_options("f", {"bind": 1}, parameters=("bind",))


def test_as_options_gives_every_config_field() -> None:
    config = SessionConfig(autoflush=False, expire_on_commit=False, twophase=True, info={})
    options = config.as_options()
    assert set(options) == set(SessionConfig.model_fields) == set(get_type_hints(SessionOptions))
    assert SessionConfig(**options) == config
