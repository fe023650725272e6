"""Opt-in value validation with pydantic, and conversion between entities and pydantic models.

An entity mapped with ``@entity(registry, validate=True)`` (or any entity of a
``Registry(validate=True)``) has each value checked against its attribute's annotation,
constraints included (``Mapped[Annotated[str, Field(max_length=50)]]``):

* on construction, after the constructor has stored its arguments;
* on assignment, before the value is stored (so a refused value leaves no history);
* before a flush, for pending objects and changed attributes (a value written behind the
  instrumentation's back, or mutated in place), before any SQL is sent.

The check is pydantic's *strict* mode: ``"5"`` is no ``int``, ``1`` is no ``Decimal``,
as a type checker sees it; a field can relax it with ``Annotated[int, Strict(False)]``.
The value stored is the one pydantic returns (``float`` accepts an ``int`` and stores
``5.0``; ``StringConstraints(strip_whitespace=True)`` strips). One ``TypeAdapter`` per
attribute is built when the class is mapped; an entity without validation gets no code on
any path. Values loaded from the database are not validated: the row is what it is.

``to_model`` / ``from_model`` convert between an entity and a pydantic model, for API
code: ``model_for(User)`` is a generated model with the entity's annotated fields.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast, final, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic_core import SchemaError
from sqlalchemy.exc import ArgumentError

from typed_session._mapping.mapper import mapper_of
from typed_session._typing import MISSING
from typed_session.exc import FlushError, InvalidValueError, describe

if TYPE_CHECKING:
    from typed_session._mapping.mapper import ColumnAttribute, Mapper

__all__ = ["EntityValidator", "from_model", "install_validation", "model_for", "to_model"]

_E = TypeVar("_E")
_M = TypeVar("_M", bound=BaseModel)

#: strict, as the annotations read to a type checker; arbitrary classes by isinstance
_STRICT: Final = ConfigDict(strict=True, arbitrary_types_allowed=True)
#: where a generated model is kept on the entity class
_MODEL_ATTR: Final = "__typed_session_model__"

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


def _adapter(cls: type[Any], attr: ColumnAttribute) -> TypeAdapter[Any]:
    """The ``TypeAdapter`` of one attribute (strict unless the type carries its own config).

    Raises:
        ArgumentError: if pydantic cannot validate the annotation at all.
    """
    try:
        try:
            return TypeAdapter(cast("Any", attr.python_type), config=_STRICT)
        except PydanticUserError:  # a model, dataclass or TypedDict has its own config
            return TypeAdapter(cast("Any", attr.python_type))
    except (PydanticSchemaGenerationError, PydanticUserError, SchemaError) as err:
        raise ArgumentError(
            f"{cls.__name__}.{attr.key}: pydantic cannot validate its annotation "
            f"({err}); map the class without validate=True, or annotate the attribute "
            "with a type pydantic knows"
        ) from err


@final
class EntityValidator:
    """The validators of one entity class, one ``TypeAdapter`` per column attribute."""

    __slots__ = ("adapters", "entity")

    def __init__(self, cls: type[Any], attributes: Iterable[ColumnAttribute]) -> None:
        self.entity: type[Any] = cls
        self.adapters: Mapping[str, TypeAdapter[Any]] = {
            a.key: _adapter(cls, a) for a in attributes
        }

    def check(self, key: str, value: object) -> object:
        """Validate one value of attribute ``key``; return what to store.

        Raises:
            InvalidValueError: naming the entity, the attribute and the value.
        """
        try:
            return self.adapters[key].validate_python(value)
        except PydanticValidationError as err:
            raise self._invalid(key, value, err) from None

    def _invalid(self, key: str, value: object, err: PydanticValidationError) -> InvalidValueError:
        problems = tuple(
            f"{e['msg']}" + (f" at {'.'.join(map(str, e['loc']))}" if e["loc"] else "")
            for e in err.errors(include_url=False)
        )
        return InvalidValueError(self.entity, key, value, problems, _short.repr(value))

    def check_for_flush(self, obj: object, d: Mapping[str, Any], keys: Iterable[str]) -> None:
        """Re-check the values a flush is about to write (``Mapper.check_values``).

        ``obj`` is the object whose ``__dict__`` is ``d``, or ``d`` itself for a row of a
        bulk operation.

        Raises:
            FlushError: before any SQL, naming the object, the attribute and the value
                (its cause is the ``InvalidValueError``); the session stays usable.
        """
        adapters = self.adapters
        for key in keys:
            if key not in d:
                continue
            value = d[key]
            try:
                adapters[key].validate_python(value)
            except PydanticValidationError as err:
                invalid = self._invalid(key, value, err)
                if obj is d:  # a bulk operation's row, checked on its own
                    raise FlushError(
                        f"cannot write the row {_short.repr(d)}: {invalid}; nothing of the "
                        "bulk operation was written",
                        instance=obj,
                    ) from invalid
                raise FlushError(
                    f"cannot flush {describe(obj)}: {invalid} (the value was stored without "
                    "going through assignment, or changed in place); correct it, or "
                    "expunge the object",
                    instance=obj,
                ) from invalid


def install_validation(cls: type[_E], mapper: Mapper[_E]) -> EntityValidator:
    """Validate on construction and assignment: wrap the class's ``__init__`` and ``__setattr__``.

    Called by the entity decorator after the class is instrumented; the returned
    validator is the mapper's ``check_values`` for the flush.
    """
    validator = EntityValidator(cls, mapper.columns.values())
    adapters = validator.adapters
    check = validator.check
    inner_setattr: Callable[[object, str, object], None] = cls.__setattr__

    def __setattr__(self: object, key: str, value: object) -> None:
        if key in adapters:
            value = check(key, value)
        inner_setattr(self, key, value)

    inner_init: Callable[..., None] = cls.__init__

    @functools.wraps(inner_init)
    def __init__(self: object, *args: object, **kwargs: object) -> None:
        inner_init(self, *args, **kwargs)
        d = self.__dict__
        for key in adapters:
            if key in d:
                d[key] = check(key, d[key])

    # setattr(): replacing the methods of a class mypy knows is the point here
    setattr(cls, "__setattr__", __setattr__)  # noqa: B010
    setattr(cls, "__init__", __init__)  # noqa: B010
    return validator


# -- pydantic models -------------------------------------------------------------------


def model_for(entity: type[Any]) -> type[BaseModel]:
    """A pydantic model with the entity's column attributes, annotations and defaults.

    Made once per class and kept. ``from_attributes`` is on, so
    ``model_for(User).model_validate(user)`` reads an entity directly. Attributes the
    database generates (``init=False`` keys) are optional, defaulting to ``None``.

    Raises:
        UnmappedClassError: if ``entity`` is not an entity class.
    """
    mapper = mapper_of(entity)
    made: type[BaseModel] | None = entity.__dict__.get(_MODEL_ATTR)
    if made is not None:
        return made
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": entity.__module__,
        "__annotations__": annotations,
        "model_config": ConfigDict(from_attributes=True),
    }
    for attr in mapper.columns.values():
        key = attr.key
        annotations[key] = attr.python_type
        if attr.default_factory is not None:
            namespace[key] = Field(default_factory=attr.default_factory)
        elif attr.default is not MISSING:
            namespace[key] = attr.default
        elif not attr.init:
            annotations[key] = cast("Any", attr.python_type) | None
            namespace[key] = None
    # a class statement's equivalent (create_model() takes its config as __config__=)
    model: type[BaseModel] = type(f"{entity.__name__}Model", (BaseModel,), namespace)
    setattr(entity, _MODEL_ATTR, model)
    return model


@overload
def to_model(instance: object, model: type[_M], /) -> _M: ...


@overload
def to_model(instance: object, model: None = None, /) -> BaseModel: ...


def to_model(instance: object, model: type[BaseModel] | None = None, /) -> BaseModel:
    """Read an entity into a pydantic model: ``to_model(user, UserOut) -> UserOut``.

    The model's fields are read as attributes (expired ones load, as any read does);
    without ``model``, the generated ``model_for(type(instance))``.

    Raises:
        pydantic.ValidationError: if the entity's values do not fit the model (an
            attribute with no value yet is reported as missing).
    """
    target = model_for(type(instance)) if model is None else model
    return target.model_validate(instance, from_attributes=True)


def from_model(entity: type[_E], model: BaseModel, /) -> _E:
    """A new entity object from a pydantic model's fields: ``from_model(User, user_in)``.

    The model's fields, as ``model_dump()`` gives them (its own defaults included), go
    to the constructor, or are assigned after it for ``init=False`` attributes. A field
    the model was not given whose value is ``None`` is left out, for the entity's
    default or the database (the generated key of ``model_for(User)(name="a")``).

    Raises:
        ArgumentError: if the model has fields that are no mapped attribute of the
            entity (naming them).
        UnmappedClassError: if ``entity`` is not an entity class.
    """
    columns = mapper_of(entity).columns
    given = model.model_fields_set
    values = {k: v for k, v in model.model_dump().items() if v is not None or k in given}
    unknown = [k for k in values if k not in columns]
    if unknown:
        raise ArgumentError(
            f"from_model({entity.__name__}, {type(model).__name__}): field(s) {unknown} are "
            f"not mapped attributes of {entity.__name__} (those are {list(columns)}); leave "
            "them out of the model, or build the object yourself"
        )
    init = {k: v for k, v in values.items() if columns[k].init}
    obj = cast("Callable[..., _E]", entity)(**init)
    for key, value in values.items():
        if key not in init:
            setattr(obj, key, value)
    return obj
