"""The public surface is curated and pinned (issue 19, item 2).

A name added to or dropped from an ``__all__`` fails here first, so a change of the public
surface is a decision made in review, not a side effect. The other rules: only four
modules are public; every concrete public class is ``@final`` unless it is built to be
subclassed; and the records the session makes refuse to be built by hand.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import typing
from types import ModuleType

import pytest

import typed_session
from typed_session import asyncio as ts_asyncio
from typed_session import exc, protocols

PUBLIC_MODULES = {
    "typed_session": typed_session,
    "typed_session.asyncio": ts_asyncio,
    "typed_session.exc": exc,
    "typed_session.protocols": protocols,
}

PINNED: dict[str, list[str]] = {
    "typed_session": [
        "AsyncSessionLike",
        "AsyncTransactionLike",
        "BindResolver",
        "ColumnAttribute",
        "ConnectionBinding",
        "DetachedInstanceError",
        "FlushError",
        "Hook",
        "IdentityChooser",
        "IdentityKey",
        "IdentityMap",
        "InstanceState",
        "InvalidValueError",
        "LazyLoadRefusedError",
        "LoaderOption",
        "Mapped",
        "Mapper",
        "ObjectDeletedError",
        "ObjectState",
        "ObjectStateError",
        "Query",
        "QueryChooser",
        "Registry",
        "Relationship",
        "ReplicaSession",
        "Session",
        "SessionClass",
        "SessionConfig",
        "SessionConfigError",
        "SessionEvents",
        "SessionLike",
        "SessionOptions",
        "SessionTransaction",
        "ShardChooser",
        "ShardedSession",
        "Snapshot",
        "StaleDataError",
        "TransactionLike",
        "TransactionState",
        "UnmappedClassError",
        "UnmappedInstanceError",
        "UnsetAttributeError",
        "close_all_sessions",
        "column",
        "entity",
        "from_model",
        "identity_key",
        "inspect_entity",
        "instance_state",
        "join_on",
        "joinedload",
        "make_transient",
        "make_transient_to_detached",
        "mixin",
        "model_for",
        "object_session",
        "raiseload",
        "relationship",
        "selectinload",
        "session_events",
        "sessionmaker",
        "to_model",
    ],
    "typed_session.asyncio": [
        "NOT_PROXIED",
        "STREAM_YIELD_PER",
        "AsyncAttrs",
        "AsyncBindT",
        "AsyncSession",
        "AsyncSessionClass",
        "AsyncSessionT",
        "AsyncSessionTransaction",
        "AwaitableAttrs",
        "LazyLoadRefusedError",
        "async_sessionmaker",
    ],
    "typed_session.exc": [
        "DetachedInstanceError",
        "FlushError",
        "InvalidValueError",
        "LazyLoadRefusedError",
        "ObjectDeletedError",
        "ObjectStateError",
        "SessionConfigError",
        "StaleDataError",
        "UnmappedClassError",
        "UnmappedError",
        "UnmappedInstanceError",
        "UnsetAttributeError",
    ],
    "typed_session.protocols": [
        "AsyncSessionLike",
        "AsyncTransactionLike",
        "BindResolver",
        "Hook",
        "IdentityChooser",
        "QueryChooser",
        "SessionLike",
        "ShardChooser",
        "TransactionLike",
    ],
}

#: concrete public classes that are not ``@final``, and why
SUBCLASSABLE = {
    "Session": "ShardedSession and ReplicaSession extend it; sessionmaker(class_=) takes one",
    "AsyncSession": "async_sessionmaker(class_=) takes subclasses",
    "AsyncAttrs": "a mixin for entity classes",
    "Mapped": "the annotation type: the specs column() and relationship() return subclass it",
}

#: public records the session makes, and what a user calls instead
NOT_CONSTRUCTIBLE = {
    "InstanceState": "instance_state(obj)",
    "Snapshot": "the session takes one per transaction",
    "ConnectionBinding": "session.connection()",
    "SessionTransaction": "session.begin()",
    "ColumnAttribute": "inspect_entity(Class).attributes",
    "Mapper": "inspect_entity(Class)",
    "Relationship": "relationship()",
    "LoaderOption": "selectinload()",
    "Hook": "session.events",
    "Query": "session.query(Entity)",
    "AsyncSessionTransaction": "session.begin()",
    "AwaitableAttrs": "obj.awaitable_attrs",
}

#: public values a user may build: they refer to nothing of a session's
CONSTRUCTIBLE = {
    "IdentityKey": "an immutable key: a lookup with a hand-built one finds the same object",
    "IdentityMap": "an empty map, for test doubles of SessionLike",
    "SessionEvents": "empty hooks, for test doubles of SessionLike",
    "SessionConfig": "the session's options, validated",
}


def _public(name: str) -> object:
    for module in (typed_session, ts_asyncio):
        if name in module.__all__:
            return getattr(module, name)
    raise AssertionError(name)


def _concrete_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in (typed_session, ts_asyncio):
        for name in module.__all__:
            value = getattr(module, name)
            if not inspect.isclass(value) or issubclass(value, BaseException):
                continue
            if getattr(value, "_is_protocol", False) or typing.is_typeddict(value):
                continue
            found[name] = value
    return found


def test_only_four_modules_are_public() -> None:
    names = {
        info.name
        for info in pkgutil.walk_packages(typed_session.__path__, "typed_session.")
        if not any(part.startswith("_") for part in info.name.split("."))
    }
    assert names | {"typed_session"} == set(PUBLIC_MODULES)


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_all_is_pinned(module_name: str) -> None:
    module: ModuleType = PUBLIC_MODULES[module_name]
    assert module.__all__ == PINNED[module_name]
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names {name}, which is missing"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from typed_session import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(typed_session.__all__)


def test_every_private_module_imports() -> None:
    for info in pkgutil.walk_packages(typed_session.__path__, "typed_session."):
        importlib.import_module(info.name)


def test_concrete_public_classes_are_final() -> None:
    classes = _concrete_classes()
    assert set(SUBCLASSABLE) <= set(classes)
    not_final = {
        name
        for name, cls in classes.items()
        if not getattr(cls, "__final__", False) and not issubclass(cls, enum.Enum)
    }
    assert not_final == set(SUBCLASSABLE)


def test_subclassable_classes_are_subclassed_or_meant_to_be() -> None:
    assert {c.__name__ for c in typed_session.Session.__subclasses__()} >= {
        "ShardedSession",
        "ReplicaSession",
    }


@pytest.mark.parametrize("name", sorted(NOT_CONSTRUCTIBLE))
def test_session_records_refuse_construction(name: str) -> None:
    cls = _public(name)
    assert callable(cls)
    with pytest.raises(TypeError) as caught:
        cls()
    message = str(caught.value)
    assert message.startswith(f"{name} cannot be constructed directly")
    assert NOT_CONSTRUCTIBLE[name] in message


def test_refusal_is_before_any_argument_checking() -> None:
    with pytest.raises(TypeError, match="InstanceState cannot be constructed directly"):
        typed_session.InstanceState(object())


@pytest.mark.parametrize("name", sorted(CONSTRUCTIBLE))
def test_values_a_user_may_build(name: str) -> None:
    cls = _public(name)
    assert inspect.isclass(cls)
    assert type(cls).__name__ != "NoPublicConstructor"


def test_every_public_class_is_classified() -> None:
    classified = set(SUBCLASSABLE) | set(NOT_CONSTRUCTIBLE) | set(CONSTRUCTIBLE)
    enums_and_factories = {
        name
        for name, cls in _concrete_classes().items()
        if issubclass(cls, enum.Enum)
        or name in ("Registry", "ReplicaSession", "ShardedSession")
        or name.endswith("sessionmaker")
    }
    assert set(_concrete_classes()) - enums_and_factories == classified
