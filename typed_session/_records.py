"""The records the session hands out but users do not build.

An ``InstanceState``, ``SessionTransaction`` or ``Mapper`` built by hand belongs to
nothing: it would pass ``isinstance`` checks while no session, registry or identity map
knows it. Their classes use ``NoPublicConstructor``, which turns a call of the class into a
``TypeError`` that names where one comes from; the package builds them through
``internal_constructor``, which is ``type.__call__`` bound to the class (no frame of its
own, so a record made per loaded row costs what a plain call costs).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["NoPublicConstructor", "internal_constructor", "replace_record"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_R = TypeVar("_R", bound="DataclassInstance")


class NoPublicConstructor(type):
    """A metaclass whose classes refuse to be called; ``obtained_by=`` says what to call."""

    def __new__(
        mcs,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        *,
        obtained_by: str = "",
    ) -> NoPublicConstructor:
        # setdefault: ``dataclass(slots=True)`` rebuilds the class from its namespace
        # without the keyword, and must keep the first one
        namespace.setdefault("_obtained_by", obtained_by)
        return super().__new__(mcs, name, bases, namespace)

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        how: str = cls.__dict__.get("_obtained_by", "")
        raise TypeError(
            f"{cls.__qualname__} cannot be constructed directly: it is a record typed_session "
            f"makes and keeps; {how or 'get one from the session'}"
        )


def internal_constructor(cls: Callable[_P, _T]) -> Callable[_P, _T]:
    """The constructor of a ``NoPublicConstructor`` class, for the package's own use."""
    return cast("Callable[_P, _T]", functools.partial(type.__call__, cast("type", cls)))


def replace_record(record: _R, /, **changes: object) -> _R:
    """``dataclasses.replace`` for a dataclass record whose class refuses calls."""
    fields = dataclasses.fields(record)
    fixed = [f.name for f in fields if not f.init and f.name in changes]
    if fixed:  # as dataclasses.replace says it
        raise ValueError(f"field {fixed[0]} is declared with init=False, it cannot be specified")
    values: dict[str, object] = {f.name: getattr(record, f.name) for f in fields if f.init}
    values.update(changes)
    return cast("_R", type.__call__(type(record), **values))
