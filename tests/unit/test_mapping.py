"""The mapping layer: tables generated from annotations, mappers, the generated methods."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import uuid
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, select
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Mapped as OrmMapped  # what a user migrating from the ORM writes

from typed_session import (
    ColumnAttribute,
    Mapped,
    Registry,
    Session,
    UnmappedClassError,
    UnsetAttributeError,
    column,
    entity,
    inspect_entity,
    mixin,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


reg = Registry()


@entity(reg, table="m_all_types")
class AllTypes:
    id: Mapped[int] = column(primary_key=True)
    i: Mapped[int]
    s: Mapped[str]
    b: Mapped[bool]
    f: Mapped[float]
    d: Mapped[decimal.Decimal]
    dt: Mapped[datetime.datetime]
    da: Mapped[datetime.date]
    t: Mapped[datetime.time]
    by: Mapped[bytes]
    u: Mapped[uuid.UUID]
    c: Mapped[Color]
    opt_i: Mapped[int | None]
    opt_s: Mapped[str | None]


@entity(reg, table="m_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(50))
    email: Mapped[str | None] = column(default=None)
    login: Mapped[str] = column(unique=True, name="login_name", default="")
    score: Mapped[int] = column(index=True, default=0)
    created: Mapped[datetime.datetime] = column(server_default=func.current_timestamp(), init=False)
    tags: Mapped[str] = column(default_factory=lambda: "t", repr=False)
    kind: ClassVar[str] = "user"


@entity(reg, table="m_addresses")
class Address:
    id: Mapped[int] = column(primary_key=True, init=False)
    user_id: Mapped[int] = column(foreign_key="m_users.id")
    street: Mapped[str]


@entity(reg, table="m_pairs")
class Pair:
    left: Mapped[int] = column(primary_key=True)
    right: Mapped[str] = column(primary_key=True)
    value: Mapped[int | None] = column(default=None)


core_table = Table(
    "m_core",
    reg.metadata,
    Column("id", Integer, primary_key=True),
    Column("title_col", String(80), key="title", nullable=False),
    Column("note", String(200)),
)


@entity(reg, table=core_table)
class FromCore:
    id: Mapped[int]
    title: Mapped[str]
    note: Mapped[str | None] = column(default=None)


def _col(cls: type[Any], key: str) -> Column[Any]:
    return inspect_entity(cls).attributes[key].column


# -- the generated table --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("i", sa.Integer),
        ("s", sa.String),
        ("b", sa.Boolean),
        ("f", sa.Float),
        ("d", sa.Numeric),
        ("dt", sa.DateTime),
        ("da", sa.Date),
        ("t", sa.Time),
        ("by", sa.LargeBinary),
        ("u", sa.Uuid),
        ("c", sa.Enum),
        ("opt_i", sa.Integer),
        ("opt_s", sa.String),
    ],
)
def test_column_type_inferred_from_annotation(key: str, expected: type[Any]) -> None:
    assert isinstance(_col(AllTypes, key).type, expected)


def test_str_gets_a_length_of_255() -> None:
    type_ = _col(AllTypes, "s").type
    assert isinstance(type_, sa.String)
    assert type_.length == 255


def test_enum_column_uses_the_enum_class() -> None:
    type_ = _col(AllTypes, "c").type
    assert isinstance(type_, sa.Enum)
    assert type_.enum_class is Color
    assert set(type_.enums) == {"RED", "GREEN"}


def test_float_is_not_numeric_and_bool_is_not_integer() -> None:
    # exact classes: Double subclasses Float subclasses Numeric, so isinstance alone would
    # not tell them apart; float is DOUBLE so that MariaDB keeps double precision
    assert type(_col(AllTypes, "f").type) is sa.Double
    assert type(_col(AllTypes, "d").type) is sa.Numeric
    assert type(_col(AllTypes, "b").type) is sa.Boolean


def test_column_names_follow_attribute_keys() -> None:
    table = inspect_entity(AllTypes).table
    assert table.name == "m_all_types"
    assert [c.name for c in table.columns] == list(inspect_entity(AllTypes).attribute_keys)
    assert [c.key for c in table.columns] == [c.name for c in table.columns]


def test_optional_annotation_is_nullable_plain_is_not_null() -> None:
    assert _col(AllTypes, "opt_i").nullable is True
    assert _col(AllTypes, "opt_s").nullable is True
    assert _col(AllTypes, "i").nullable is False
    assert _col(AllTypes, "s").nullable is False
    assert _col(AllTypes, "id").nullable is False


def test_single_primary_key() -> None:
    mapper = inspect_entity(User)
    assert [c.name for c in mapper.table.primary_key.columns] == ["id"]
    assert mapper.pk_keys == ("id",)
    assert _col(User, "id").primary_key is True


def test_composite_primary_key_in_declaration_order() -> None:
    mapper = inspect_entity(Pair)
    assert [c.name for c in mapper.table.primary_key.columns] == ["left", "right"]
    assert mapper.pk_keys == ("left", "right")
    assert [a.key for a in mapper.primary_key] == ["left", "right"]


def test_optional_primary_key_is_still_not_null() -> None:
    r = Registry()

    @entity(r, table="m_opt_pk")
    class OptPk:
        id: Mapped[int | None] = column(primary_key=True, default=None)

    assert _col(OptPk, "id").nullable is False


def test_explicit_type_overrides_the_inferred_one() -> None:
    type_ = _col(User, "name").type
    assert isinstance(type_, sa.String)
    assert type_.length == 50


def test_explicit_type_class_is_accepted() -> None:
    r = Registry()

    @entity(r, table="m_type_class")
    class WithText:
        id: Mapped[int] = column(primary_key=True)
        body: Mapped[str] = column(sa.Text)

    assert isinstance(_col(WithText, "body").type, sa.Text)


def test_unique() -> None:
    assert _col(User, "login").unique is True
    assert not _col(User, "name").unique


def test_index() -> None:
    table = inspect_entity(User).table
    indexed = {tuple(c.name for c in ix.columns) for ix in table.indexes}
    assert ("score",) in indexed
    assert ("name",) not in indexed


def test_foreign_key() -> None:
    fks = list(_col(Address, "user_id").foreign_keys)
    assert len(fks) == 1
    assert fks[0].column is _col(User, "id")


def test_name_differs_from_attribute_key() -> None:
    login = _col(User, "login")
    assert login.name == "login_name"
    assert login.key == "login"
    assert inspect_entity(User).table.c.login is login
    assert "login_name" in select(User).compile().string


def test_server_default() -> None:
    created = _col(User, "created")
    assert created.server_default is not None
    assert inspect_entity(User).attributes["created"].database_generated


def test_scalar_default_is_also_the_core_default() -> None:
    default = _col(User, "score").default
    assert isinstance(default, sa.ColumnDefault)
    assert default.is_scalar
    assert default.arg == 0


def test_classvar_is_not_mapped() -> None:
    assert "kind" not in inspect_entity(User).attribute_keys
    assert User.kind == "user"


def test_create_all_creates_the_tables(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    names = set(sa.inspect(memory_engine).get_table_names())
    assert {"m_all_types", "m_users", "m_addresses", "m_pairs", "m_core"} <= names
    reg.drop_all(memory_engine)
    assert not set(sa.inspect(memory_engine).get_table_names()) & names


# -- an existing Core table -------------------------------------------------------------


def test_existing_table_is_mapped_as_is() -> None:
    mapper = inspect_entity(FromCore)
    assert mapper.table is core_table
    assert FromCore.title is core_table.c.title
    assert mapper.attribute_keys == ("id", "title", "note")
    assert str(select(FromCore)).split() == [
        "SELECT",
        "m_core.id,",
        "m_core.title_col,",
        "m_core.note",
        "FROM",
        "m_core",
    ]
    obj = FromCore(id=1, title="t")
    assert (obj.id, obj.title, obj.note) == (1, "t", None)


def test_existing_table_attribute_without_column_names_attribute_and_table() -> None:
    r = Registry()
    table = Table(
        "m_ext", r.metadata, Column("id", Integer, primary_key=True), Column("nm", String)
    )
    with pytest.raises(ArgumentError, match=r"Bad\.name has no column in table 'm_ext'") as info:

        @entity(r, table=table)
        class Bad:
            id: Mapped[int]
            name: Mapped[str]

    assert "id, nm" in str(info.value)


def test_existing_table_primary_key_must_be_mapped() -> None:
    r = Registry()
    table = Table(
        "m_ext_pk",
        r.metadata,
        Column("id", Integer, primary_key=True),
        Column("x", Integer, nullable=False),
    )
    with pytest.raises(UnmappedClassError, match="has no mapped primary key"):

        @entity(r, table=table)
        class NoPk:
            x: Mapped[int]


def test_existing_table_nullable_column_needs_optional_annotation() -> None:
    r = Registry()
    table = Table(
        "m_ext_null",
        r.metadata,
        Column("id", Integer, primary_key=True),
        Column("n", Integer, nullable=True),
    )
    with pytest.raises(ArgumentError, match=r"Loose\.n is annotated Mapped\[int\]") as info:

        @entity(r, table=table)
        class Loose:
            id: Mapped[int]
            n: Mapped[int]

    assert "Mapped[int | None]" in str(info.value)


def test_existing_table_positional_parameters_follow_annotation_order() -> None:
    r = Registry()
    table = Table(
        "m_ext_order",
        r.metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String, nullable=False),
    )

    @entity(r, table=table, kw_only=False)
    class Reordered:
        name: Mapped[str]
        id: Mapped[int]

    assert list(inspect.signature(Reordered.__init__).parameters) == ["self", "name", "id"]
    obj = Reordered("a", 1)
    assert (obj.name, obj.id) == ("a", 1)


# -- the mapper ---------------------------------------------------------------------------


def test_mapper_attributes() -> None:
    mapper = inspect_entity(User)
    assert mapper.class_ is User
    assert mapper.table is reg.metadata.tables["m_users"]
    assert mapper.registry is reg
    assert mapper.pk_keys == ("id",)
    assert mapper.primary_key == (mapper.attributes["id"],)
    assert mapper.attribute_keys == ("id", "name", "email", "login", "score", "created", "tags")
    assert all(isinstance(a, ColumnAttribute) for a in mapper.attributes.values())
    assert mapper in reg.mappers
    assert mapper in list(reg)
    assert repr(mapper) == "Mapper(User -> m_users)"


def test_column_attribute_records_python_type_and_options() -> None:
    attrs = inspect_entity(User).attributes
    assert attrs["email"].python_type == str | None
    assert attrs["email"].nullable
    assert not attrs["name"].nullable
    assert attrs["id"].init is False
    assert attrs["tags"].repr is False
    assert attrs["tags"].default_factory is not None
    assert attrs["score"].default == 0


def test_inspect_entity_of_a_plain_class() -> None:
    class Plain:
        pass

    with pytest.raises(UnmappedClassError, match=r"class Plain is not mapped.*@entity"):
        inspect_entity(Plain)


def test_mapping_a_class_twice_is_refused() -> None:
    r = Registry()

    @entity(r, table="m_once")
    class Once:
        id: Mapped[int] = column(primary_key=True)

    with pytest.raises(ArgumentError, match="already mapped"):
        entity(r, table="m_twice")(Once)


# -- mapping errors -----------------------------------------------------------------------


def test_entity_without_primary_key() -> None:
    with pytest.raises(UnmappedClassError, match=r"entity NoKey has no mapped primary key") as info:

        @entity(Registry(), table="m_nokey")
        class NoKey:
            name: Mapped[str]

    assert "column(primary_key=True)" in str(info.value)


def test_annotation_that_is_not_mapped() -> None:
    with pytest.raises(ArgumentError, match=r"Plain\.count is annotated") as info:

        @entity(Registry(), table="m_plain")
        class Plain:
            id: Mapped[int] = column(primary_key=True)
            count: int

    message = str(info.value)
    assert "Mapped[int]" in message
    assert "ClassVar" in message


def test_annotation_that_is_not_mapped_names_a_generic_type_as_written() -> None:
    with pytest.raises(ArgumentError, match=r"Plain\.tags is annotated list\[str\]") as info:

        @entity(Registry(), table="m_plain_generic")
        class Plain:
            id: Mapped[int] = column(primary_key=True)
            tags: list[str]

    assert "write Mapped[list[str]]" in str(info.value)


def test_sqlalchemy_orm_mapped_names_the_right_import() -> None:
    with pytest.raises(ArgumentError, match=r"Orm\.name is annotated with SQLAlchemy's") as info:

        @entity(Registry(), table="m_orm_mapped")
        class Orm:
            id: Mapped[int] = column(primary_key=True)
            name: OrmMapped[str]

    message = str(info.value)
    assert "sqlalchemy.orm.Mapped[str]" in message
    assert "from typed_session import Mapped" in message
    assert "Mapped[Mapped" not in message


def test_unknown_python_type_without_column_type() -> None:
    with pytest.raises(ArgumentError, match=r"Odd\.data: no column type is known") as info:

        @entity(Registry(), table="m_odd")
        class Odd:
            id: Mapped[int] = column(primary_key=True)
            data: Mapped[list[int]]

    assert "column(sqlalchemy.JSON)" in str(info.value)


def test_unknown_python_type_with_column_type_is_fine() -> None:
    @entity(Registry(), table="m_json")
    class WithJson:
        id: Mapped[int] = column(primary_key=True)
        data: Mapped[list[int]] = column(sa.JSON, default_factory=list)

    assert isinstance(_col(WithJson, "data").type, sa.JSON)


def test_default_and_default_factory_together() -> None:
    with pytest.raises(ArgumentError, match=r"default= or default_factory=, not both"):
        column(default=1, default_factory=list)  # type: ignore[call-overload]  # refused


def test_a_callable_default_is_refused_with_the_way_out() -> None:
    # the constructor would store the function itself as the attribute's value
    with pytest.raises(ArgumentError, match=r"default=datetime\.now\) got a callable") as info:
        column(default=datetime.datetime.now)

    assert "default_factory=datetime.now" in str(info.value)


@pytest.mark.parametrize("value", [[], {}, set()], ids=["list", "dict", "set"])
def test_a_mutable_default_is_refused_with_the_way_out(value: object) -> None:
    # one list in the generated __init__'s defaults would be shared by every object
    kind = type(value).__name__
    with pytest.raises(ArgumentError, match=rf"one mutable {kind} between every object") as info:
        column(default=value)

    assert f"default_factory={kind}" in str(info.value)


def test_a_plain_class_value_default_is_checked_like_column_default() -> None:
    with pytest.raises(ArgumentError, match=r"mutable list"):

        @entity(Registry(), table="m_plain_list")
        class PlainList:
            id: Mapped[int] = column(primary_key=True)
            tags: Mapped[list[int]] = []  # type: ignore[assignment]  # noqa: RUF012 -- refused


def test_table_name_defined_twice_in_one_registry() -> None:
    r = Registry()

    @entity(r, table="m_dup")
    class First:
        id: Mapped[int] = column(primary_key=True)

    with pytest.raises(ArgumentError, match=r"table 'm_dup' is already defined") as info:

        @entity(r, table="m_dup")
        class Second:
            id: Mapped[int] = column(primary_key=True)

    assert "Second" in str(info.value)
    assert inspect_entity(First).table.name == "m_dup"


def test_same_table_name_in_two_registries_is_fine() -> None:
    for r in (Registry(), Registry(MetaData())):

        @entity(r, table="m_shared_name")
        class Shared:
            id: Mapped[int] = column(primary_key=True)

        assert inspect_entity(Shared).table.metadata is r.metadata


def test_default_table_name_is_the_lowercased_class_name() -> None:
    @entity(Registry())
    class Widget:
        id: Mapped[int] = column(primary_key=True)

    assert inspect_entity(Widget).table.name == "widget"


def test_nullable_column_annotated_non_optional() -> None:
    with pytest.raises(ArgumentError, match=r"Loose\.n is nullable") as info:

        @entity(Registry(), table="m_loose")
        class Loose:
            id: Mapped[int] = column(primary_key=True)
            n: Mapped[int] = column(nullable=True)

    assert "Mapped[int | None]" in str(info.value)


def test_nullable_column_message_spells_the_annotation() -> None:
    with pytest.raises(ArgumentError) as info:

        @entity(Registry(), table="m_loose2")
        class Loose:
            id: Mapped[int] = column(primary_key=True)
            n: Mapped[int] = column(nullable=True)

    assert "<class" not in str(info.value)


def test_not_null_column_annotated_optional_is_allowed() -> None:
    @entity(Registry(), table="m_strict")
    class Strict:
        id: Mapped[int] = column(primary_key=True)
        n: Mapped[int | None] = column(nullable=False, default=None)

    assert _col(Strict, "n").nullable is False


def test_column_spec_on_a_mixin_is_honoured() -> None:
    @mixin
    class HasId:
        id: Mapped[int] = column(primary_key=True, init=False)

    @entity(Registry(), table="m_mixed")
    class Mixed(HasId):
        name: Mapped[str]

    assert inspect_entity(Mixed).pk_keys == ("id",)


def test_mixin_attributes_come_first_and_keyword_only_as_the_checkers_see_them() -> None:
    @mixin
    class Stamped:
        version: Mapped[int] = column(default=1)

    @entity(Registry(), table="m_stamped", kw_only=False)
    class Doc(Stamped):
        id: Mapped[int] = column(primary_key=True)
        title: Mapped[str]

    params = inspect.signature(Doc.__init__).parameters
    assert list(params) == ["self", "id", "title", "version"]
    assert params["version"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["id"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    doc = Doc(1, "t")
    assert (doc.id, doc.title, doc.version) == (1, "t", 1)


def test_attributes_of_a_plain_base_class_are_refused_with_the_way_out() -> None:
    # mapped at run time but invisible to both type checkers: refused
    class HasId:
        id: Mapped[int] = column(primary_key=True, init=False)

    with pytest.raises(ArgumentError, match=r"Plain inherits the Mapped attribute 'id'") as info:

        @entity(Registry(), table="m_plain_base")
        class Plain(HasId):
            name: Mapped[str]

    assert "Decorate HasId with @typed_session.mixin" in str(info.value)


def test_a_plain_subclass_of_a_mixin_is_not_a_mixin() -> None:
    @mixin
    class HasId:
        id: Mapped[int] = column(primary_key=True, init=False)

    class HasName(HasId):
        name: Mapped[str]

    with pytest.raises(ArgumentError, match=r"from HasName, a plain class"):

        @entity(Registry(), table="m_plain_sub")
        class Named(HasName):
            pass


# -- the generated __init__ ---------------------------------------------------------------


def test_a_user_written_init_is_kept() -> None:
    @entity(Registry(), table="m_own_init")
    class Person:
        id: Mapped[int] = column(primary_key=True, init=False)
        name: Mapped[str]

        def __init__(self, first: str, last: str) -> None:
            self.name = f"{first} {last}"

    assert Person("Ada", "Lovelace").name == "Ada Lovelace"
    with pytest.raises(TypeError):
        Person(name="x")  # type: ignore[call-arg]  # the generated one would take this


# -- dataclasses' functions and pattern matching ----------------------------------------


@entity(Registry(), table="m_dc_points", kw_only=False)
class DcPoint:
    id: Mapped[int] = column(primary_key=True, init=False)
    x: Mapped[int]
    y: Mapped[int] = column(default=0)
    label: Mapped[str | None] = column(default=None, kw_only=True)


def test_dataclasses_fields_lists_the_mapped_attributes_in_declaration_order() -> None:
    fields = dataclasses.fields(DcPoint)

    assert [f.name for f in fields] == ["id", "x", "y", "label"]
    assert [f.init for f in fields] == [False, True, True, True]
    assert [f.kw_only for f in fields] == [False, False, False, True]
    assert fields[2].default == 0
    assert not any(f.compare for f in fields)  # entities compare by identity
    assert dataclasses.is_dataclass(DcPoint)


def test_dataclasses_asdict_and_replace_work_on_an_entity() -> None:
    p = DcPoint(1, 2, label="a")
    p.id = 7

    assert dataclasses.asdict(p) == {"id": 7, "x": 1, "y": 2, "label": "a"}
    moved = dataclasses.replace(p, y=5)
    # a new, transient object: init=False attributes are not copied, as in dataclasses
    assert moved is not p
    assert (moved.x, moved.y, moved.label) == (1, 5, "a")
    assert "id" not in moved.__dict__


def test_match_args_are_the_positional_constructor_parameters() -> None:
    assert DcPoint.__match_args__ == ("x", "y")
    assert User.__match_args__ == ()  # keyword-only constructor
    match DcPoint(3, 4):
        case DcPoint(3, y):
            assert y == 4
        case _:
            pytest.fail("positional class pattern did not match")


def test_init_is_keyword_only_by_default() -> None:
    params = inspect.signature(User.__init__).parameters
    assert "id" not in params
    assert "created" not in params
    for name in ("name", "email", "login", "score", "tags"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError):
        User("x")  # type: ignore[call-arg]


def test_init_positional_when_kw_only_false() -> None:
    @entity(Registry(), table="m_pos", kw_only=False)
    class Pos:
        x: Mapped[int] = column(primary_key=True)
        y: Mapped[int] = column(default=0)
        label: Mapped[str] = column(default="", kw_only=True)

    params = inspect.signature(Pos.__init__).parameters
    assert params["x"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["y"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["label"].kind is inspect.Parameter.KEYWORD_ONLY
    p = Pos(1, 2, label="p")
    assert (p.x, p.y, p.label) == (1, 2, "p")


def test_positional_without_default_after_default_is_refused() -> None:
    with pytest.raises(TypeError, match="positional attribute without a default"):

        @entity(Registry(), table="m_badpos", kw_only=False)
        class BadPos:
            x: Mapped[int] = column(primary_key=True, default=0)
            y: Mapped[int]  # type: ignore[misc]  # the checkers refuse it too


def test_init_applies_defaults() -> None:
    u = User(name="x")
    assert u.email is None
    assert u.login == ""
    assert u.score == 0
    assert u.tags == "t"


def test_init_stores_given_values() -> None:
    u = User(name="x", email="e", login="l", score=3, tags="a")
    assert (u.name, u.email, u.login, u.score, u.tags) == ("x", "e", "l", 3, "a")


def test_default_factory_is_called_per_instance() -> None:
    calls: list[int] = []

    def make() -> list[int]:
        calls.append(1)
        return []

    @entity(Registry(), table="m_factory")
    class Box:
        id: Mapped[int] = column(primary_key=True, init=False)
        items: Mapped[list[int]] = column(sa.JSON, default_factory=make)

    a, b = Box(), Box()
    assert a.items == []
    assert a.items is not b.items
    assert len(calls) == 2
    c = Box(items=[1])
    assert c.items == [1]
    assert len(calls) == 2


def test_init_false_fields_are_left_out() -> None:
    u = User(name="x")
    assert "id" not in u.__dict__
    assert "created" not in u.__dict__


def test_init_false_field_with_default_gets_the_default() -> None:
    @entity(Registry(), table="m_initdefault")
    class Counter:
        id: Mapped[int] = column(primary_key=True, init=False)
        n: Mapped[int] = column(init=False, default=5)
        log: Mapped[str] = column(init=False, default_factory=lambda: "log")

    assert "n" not in inspect.signature(Counter.__init__).parameters
    c = Counter()
    assert (c.n, c.log) == (5, "log")


def test_post_init_is_called() -> None:
    seen: list[str] = []

    @entity(Registry(), table="m_postinit")
    class Hooked:
        id: Mapped[int] = column(primary_key=True, init=False)
        name: Mapped[str]
        upper: Mapped[str] = column(init=False, default="")

        def __post_init__(self) -> None:
            seen.append(self.name)
            self.upper = self.name.upper()

    h = Hooked(name="ab")
    assert seen == ["ab"]
    assert h.upper == "AB"


def test_entity_init_false_keeps_the_class_init() -> None:
    @entity(Registry(), table="m_owninit", init=False)
    class OwnInit:
        id: Mapped[int] = column(primary_key=True)

        def __init__(self, ident: int) -> None:
            self.id = ident * 10

    assert OwnInit(2).id == 20


# -- the generated __repr__ ------------------------------------------------------------


def test_repr_shows_loaded_attributes_only() -> None:
    u = User(name="x")
    assert repr(u) == "User(name='x', email=None, login='', score=0)"
    u.id = 7
    assert repr(u) == "User(id=7, name='x', email=None, login='', score=0)"


def test_repr_after_commit_shows_nothing_until_loaded(memory_engine: Engine) -> None:
    r = Registry()

    @entity(r, table="m_repr")
    class Item:
        id: Mapped[int] = column(primary_key=True, init=False)
        name: Mapped[str]

    r.create_all(memory_engine)
    with Session(memory_engine) as session:
        item = Item(name="a")
        session.add(item)
        session.commit()
        assert repr(item) == f"{Item.__qualname__}()"
        assert item.name == "a"
        assert repr(item) == f"{Item.__qualname__}(id=1, name='a')"


def test_own_repr_is_kept() -> None:
    @entity(Registry(), table="m_ownrepr")
    class OwnRepr:
        id: Mapped[int] = column(primary_key=True)

        def __repr__(self) -> str:
            return "mine"

    assert repr(OwnRepr(id=1)) == "mine"


# -- class-level access and statements ---------------------------------------------------


def test_class_attribute_is_the_core_column() -> None:
    table = inspect_entity(User).table
    assert User.name is table.c.name
    assert User.id is table.c.id
    assert isinstance(User.name, Column)


def test_select_entity_renders_every_column() -> None:
    assert " ".join(str(select(User)).split()) == (
        "SELECT m_users.id, m_users.name, m_users.email, m_users.login_name, "
        "m_users.score, m_users.created, m_users.tags FROM m_users"
    )


def test_where_on_class_attribute() -> None:
    stmt = select(User).where(User.name == "x")
    assert " ".join(str(stmt).split()).endswith("FROM m_users WHERE m_users.name = :name_1")


# -- deleting and unset attributes ------------------------------------------------------


def test_del_mapped_attribute_is_refused() -> None:
    u = User(name="x")
    with pytest.raises(
        AttributeError, match=r"User\.name is a mapped attribute and cannot be deleted"
    ):
        del u.name
    assert u.name == "x"


def test_del_plain_attribute_still_works() -> None:
    u = User(name="x")
    u.extra = 1  # type: ignore[attr-defined]
    del u.extra  # type: ignore[attr-defined]
    assert "extra" not in u.__dict__


def test_reading_an_attribute_never_set() -> None:
    @entity(Registry(), table="m_unset")
    class Unset:
        id: Mapped[int] = column(primary_key=True)
        value: Mapped[int] = column(init=False)

    obj = Unset(id=1)
    with pytest.raises(UnsetAttributeError, match=r"Unset\.value .* has no value") as info:
        _ = obj.value
    assert isinstance(info.value, AttributeError)
    assert "never assigned" in str(info.value)
    assert info.value.attribute == "value"
    assert info.value.instance is obj
    assert not hasattr(obj, "value")


def test_reading_a_database_generated_primary_key_before_flush() -> None:
    u = User(name="x")
    with pytest.raises(UnsetAttributeError, match=r"User\.id .* has no value") as info:
        _ = u.id
    message = str(info.value)
    assert "flush()" in message
    assert "database generates it" in message


def test_reading_a_server_default_before_flush() -> None:
    u = User(name="x")
    with pytest.raises(UnsetAttributeError, match=r"flush\(\)"):
        _ = u.created


def test_assignment_after_unset_makes_it_readable() -> None:
    u = User(name="x")
    u.id = 3
    assert u.id == 3


def test_column_default_does_not_reach_core_when_callable() -> None:
    # default_factory is the constructor's; Core gets no client-side default from it
    assert _col(User, "tags").default is None


def test_entity_inheriting_from_an_entity_is_refused_with_the_way_out() -> None:
    reg = Registry()

    @entity(reg, table="m_inh_base")
    class Base:
        id: Mapped[int] = column(primary_key=True, init=False)

    with pytest.raises(ArgumentError, match=r"decorated with @typed_session\.mixin"):

        @entity(reg, table="m_inh_child")
        class Child(Base):
            name: Mapped[str]
