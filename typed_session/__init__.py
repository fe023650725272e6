"""typed_session: a strictly typed unit-of-work ORM session on SQLAlchemy Core.

The public modules are this package, ``typed_session.asyncio`` (``AsyncSession``),
``typed_session.exc`` (the exceptions) and ``typed_session.protocols`` (the stable tier for
library authors: ``SessionLike``, ``AsyncSessionLike``, ``TransactionLike``,
``AsyncTransactionLike``, ``BindResolver``, ``ShardChooser``, ``IdentityChooser``,
``QueryChooser``, ``Hook``). Every other module is private (its name starts with an
underscore) and may change between releases: import from here.
"""

from typed_session._binds import BindResolver as BindResolver
from typed_session._config import SessionConfig as SessionConfig
from typed_session._config import SessionOptions as SessionOptions
from typed_session._events import Hook as Hook
from typed_session._events import SessionEvents as SessionEvents
from typed_session._events import session_events as session_events
from typed_session._factory import SessionClass as SessionClass
from typed_session._factory import sessionmaker as sessionmaker
from typed_session._identity import IdentityKey as IdentityKey
from typed_session._identity import IdentityMap as IdentityMap
from typed_session._keys import identity_key as identity_key
from typed_session._loaders import LoaderOption as LoaderOption
from typed_session._loaders import join_on as join_on
from typed_session._loaders import joinedload as joinedload
from typed_session._loaders import raiseload as raiseload
from typed_session._loaders import selectinload as selectinload
from typed_session._mapping.fields import Mapped as Mapped
from typed_session._mapping.fields import column as column
from typed_session._mapping.fields import relationship as relationship
from typed_session._mapping.mapper import ColumnAttribute as ColumnAttribute
from typed_session._mapping.mapper import Mapper as Mapper
from typed_session._mapping.mapper import inspect_entity as inspect_entity
from typed_session._mapping.registry import Registry as Registry
from typed_session._mapping.registry import entity as entity
from typed_session._mapping.registry import mixin as mixin
from typed_session._mapping.relationships import Relationship as Relationship
from typed_session._objects import make_transient as make_transient
from typed_session._objects import make_transient_to_detached as make_transient_to_detached
from typed_session._objects import object_session as object_session
from typed_session._query import Query as Query
from typed_session._replicas import ReplicaSession as ReplicaSession
from typed_session._session import Session as Session
from typed_session._session import close_all_sessions as close_all_sessions
from typed_session._sharding import IdentityChooser as IdentityChooser
from typed_session._sharding import QueryChooser as QueryChooser
from typed_session._sharding import ShardChooser as ShardChooser
from typed_session._sharding import ShardedSession as ShardedSession
from typed_session._state import InstanceState as InstanceState
from typed_session._state import ObjectState as ObjectState
from typed_session._state import instance_state as instance_state
from typed_session._transaction import ConnectionBinding as ConnectionBinding
from typed_session._transaction import SessionTransaction as SessionTransaction
from typed_session._transaction import Snapshot as Snapshot
from typed_session._transaction import TransactionState as TransactionState
from typed_session._validation import from_model as from_model
from typed_session._validation import model_for as model_for
from typed_session._validation import to_model as to_model
from typed_session.exc import DetachedInstanceError as DetachedInstanceError
from typed_session.exc import FlushError as FlushError
from typed_session.exc import InvalidValueError as InvalidValueError
from typed_session.exc import LazyLoadRefusedError as LazyLoadRefusedError
from typed_session.exc import ObjectDeletedError as ObjectDeletedError
from typed_session.exc import ObjectStateError as ObjectStateError
from typed_session.exc import SessionConfigError as SessionConfigError
from typed_session.exc import StaleDataError as StaleDataError
from typed_session.exc import UnmappedClassError as UnmappedClassError
from typed_session.exc import UnmappedInstanceError as UnmappedInstanceError
from typed_session.exc import UnsetAttributeError as UnsetAttributeError
from typed_session.protocols import AsyncSessionLike as AsyncSessionLike
from typed_session.protocols import AsyncTransactionLike as AsyncTransactionLike
from typed_session.protocols import SessionLike as SessionLike
from typed_session.protocols import TransactionLike as TransactionLike

__all__ = [
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
]
