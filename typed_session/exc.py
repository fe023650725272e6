"""Exceptions raised by typed_session, and where each sits in the tree.

Core's classes are reused where they already mean the right thing, so code that
catches ``sqlalchemy.exc.InvalidRequestError`` keeps working::

    sqlalchemy.exc.SQLAlchemyError
    ├── sqlalchemy.exc.ArgumentError
    │   └── SessionConfigError                         (a wrong option to Session(...))
    ├── sqlalchemy.exc.InvalidRequestError
    │   ├── UnmappedError
    │   │   ├── UnmappedInstanceError                  (an object of a class that is no entity)
    │   │   └── UnmappedClassError                     (a class that is no entity)
    │   ├── ObjectStateError                           (wrong lifecycle state for the call)
    │   ├── FlushError                                 (the unit of work cannot proceed)
    │   ├── DetachedInstanceError                      (a load needs a session the object has left)
    │   └── ObjectDeletedError                         (the object's row is gone)
    ├── sqlalchemy.exc.PendingRollbackError            (Core's; a failed flush needs rollback())
    └── StaleDataError                                 (a row count did not match the plan)

    AttributeError
    └── UnsetAttributeError                            (a mapped attribute has no value yet)

    ValueError
    └── InvalidValueError                              (a value fails validate=True's check)

Every error says what went wrong, on which object or attribute, and what to do next; the
objects involved are attributes of the exception, for programs to read.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

__all__ = [
    "DetachedInstanceError",
    "FlushError",
    "InvalidValueError",
    "ObjectDeletedError",
    "ObjectStateError",
    "SessionConfigError",
    "StaleDataError",
    "UnmappedClassError",
    "UnmappedError",
    "UnmappedInstanceError",
    "UnsetAttributeError",
]


def describe(instance: object) -> str:
    """Name an object in a message without touching its (possibly unloaded) attributes."""
    return f"<{type(instance).__name__} at 0x{id(instance):x}>"


class SessionConfigError(sa_exc.ArgumentError):
    """A ``Session`` or ``sessionmaker`` was given an option it does not know or cannot use."""


class UnmappedError(sa_exc.InvalidRequestError):
    """Something that should be an entity, or an instance of one, is not."""


class UnmappedInstanceError(UnmappedError):
    """An object whose class is not mapped was handed to the session."""

    def __init__(self, instance: object, message: str | None = None) -> None:
        self.instance = instance
        super().__init__(
            message
            or (
                f"{describe(instance)} is not an instance of a mapped class: decorate "
                f"{type(instance).__name__} with @entity(registry) before handing its "
                "objects to a Session"
            )
        )


class UnmappedClassError(UnmappedError):
    """A class that is not an entity was used where an entity is needed."""

    def __init__(self, cls: object, message: str | None = None) -> None:
        self.cls = cls
        name = getattr(cls, "__name__", repr(cls))
        super().__init__(
            message or f"class {name} is not mapped: decorate it with @entity(registry) first"
        )


class ObjectStateError(sa_exc.InvalidRequestError):
    """The operation does not apply to the object in its present lifecycle state."""

    def __init__(self, instance: object, message: str) -> None:
        self.instance = instance
        super().__init__(message)


class FlushError(sa_exc.InvalidRequestError):
    """The unit of work found a plan it cannot carry out; nothing of the flush is kept.

    Attributes:
        instance: the object that could not be written.
        existing: for a key conflict, the persistent object that has the key.
    """

    def __init__(
        self, message: str, instance: object | None = None, *, existing: object | None = None
    ) -> None:
        self.instance = instance
        self.existing = existing
        super().__init__(message)


class StaleDataError(sa_exc.SQLAlchemyError):
    """An UPDATE or DELETE matched a different number of rows than the flush planned.

    Attributes:
        instance: for a versioned row, the object whose row another writer changed.
        expected_version: the version the object expected its row to have.
    """

    def __init__(
        self, message: str, *, instance: object | None = None, expected_version: object = None
    ) -> None:
        self.instance = instance
        self.expected_version = expected_version
        super().__init__(message)


class DetachedInstanceError(sa_exc.InvalidRequestError):
    """An attribute needs loading, but the object belongs to no session that could load it."""

    def __init__(self, instance: object, attribute: str, *, relationship: bool = False) -> None:
        self.instance = instance
        self.attribute = attribute
        cls = type(instance).__name__
        if relationship:
            super().__init__(
                f"Parent instance {describe(instance)} is not bound to a Session; lazy load "
                f"operation of attribute '{attribute}' cannot proceed: {cls}.{attribute} "
                "is not loaded and the object is detached from any Session. Ways out: load "
                f"it with the query (select({cls}).options(selectinload({cls}.{attribute}))), "
                "read it before the session closes, create the session with "
                "expire_on_commit=False, or attach the object to a live session with "
                "session.add(obj)"
            )
            return
        super().__init__(
            f"Instance {describe(instance)} is not bound to a Session; attribute refresh "
            f"operation cannot proceed: {cls}.{attribute} is not loaded and the object is "
            "detached from any Session, so it cannot be loaded. Ways out: "
            "create the session with expire_on_commit=False so that commit() keeps the "
            "loaded values; call session.refresh(obj) or read the attribute before "
            "session.close(); or attach it to a live session with session.add(obj), "
            "which loads it there"
        )


class ObjectDeletedError(sa_exc.InvalidRequestError):
    """An expired object's row could not be found any more when it was reloaded."""

    def __init__(
        self, instance: object, attribute: str | None = None, *, message: str | None = None
    ) -> None:
        self.instance = instance
        self.attribute = attribute
        super().__init__(
            message
            or (
                f"Instance {describe(instance)} has been deleted, or its row is otherwise "
                f"not present: the row of this {type(instance).__name__} no longer exists, "
                "so its expired attributes cannot be reloaded (it was deleted or its key "
                "changed outside this session). Expunge the object with "
                "session.expunge(obj)"
            )
        )


class UnsetAttributeError(AttributeError):
    """A mapped attribute was read before it had any value.

    Raised instead of returning ``None``, so that ``Mapped[int]`` never yields ``None``.
    """

    def __init__(self, instance: object, attribute: str, reason: str) -> None:
        self.instance = instance
        self.attribute = attribute
        super().__init__(
            f"{type(instance).__name__}.{attribute} of {describe(instance)} has no value: {reason}"
        )


class InvalidValueError(ValueError):
    """A value does not fit its attribute's annotation, on an entity with ``validate=True``.

    Attributes:
        entity: the entity class.
        attribute: the attribute's name.
        value: the value refused.
        problems: what pydantic found wrong with it, one message each.
    """

    def __init__(
        self,
        entity: type[object],
        attribute: str,
        value: object,
        problems: tuple[str, ...],
        shown: str | None = None,
    ) -> None:
        self.entity = entity
        self.attribute = attribute
        self.value = value
        self.problems = problems
        super().__init__(
            f"invalid value for {entity.__name__}.{attribute}: "
            f"{repr(value) if shown is None else shown} ({'; '.join(problems)}). Give it a "
            "value its annotation admits, or change the annotation"
        )
