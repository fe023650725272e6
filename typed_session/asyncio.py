"""The asyncio face of typed_session: ``AsyncSession`` and ``async_sessionmaker``.

Public names, re-exported; nothing else. Imported on its own (``from typed_session.asyncio
import AsyncSession``) rather than from ``typed_session``, because it imports
``sqlalchemy.ext.asyncio``, whose package loads SQLAlchemy's ORM modules (none is used);
``import typed_session`` stays free of them. See ``docs/async.md``.
"""

from typed_session._async_factory import AsyncSessionClass as AsyncSessionClass
from typed_session._async_factory import AsyncSessionT as AsyncSessionT
from typed_session._async_factory import async_sessionmaker as async_sessionmaker
from typed_session._async_session import NOT_PROXIED as NOT_PROXIED
from typed_session._async_session import STREAM_YIELD_PER as STREAM_YIELD_PER
from typed_session._async_session import AsyncAttrs as AsyncAttrs
from typed_session._async_session import AsyncBindT as AsyncBindT
from typed_session._async_session import AsyncSession as AsyncSession
from typed_session._async_session import AsyncSessionTransaction as AsyncSessionTransaction
from typed_session._async_session import AwaitableAttrs as AwaitableAttrs
from typed_session.exc import LazyLoadRefusedError as LazyLoadRefusedError

__all__ = [
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
]
