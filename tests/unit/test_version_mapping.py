"""What ``@entity(..., version_column=...)`` accepts, and the errors for what it does not."""

import pytest
from sqlalchemy.exc import ArgumentError

from typed_session import Mapped, Registry, column, entity, inspect_entity


def test_the_version_gets_its_first_value_from_the_generator() -> None:
    @entity(Registry(), table="vm_ok", version_column="version", version_generator=lambda v: 100)
    class Ok:
        id: Mapped[int] = column(primary_key=True)
        version: Mapped[int] = column(init=False)

    assert Ok(id=1).version == 100
    mapper = inspect_entity(Ok)
    assert mapper.version_key == "version"
    assert mapper.version_generator is not None


def test_a_generator_needs_a_version_column() -> None:
    with pytest.raises(ArgumentError, match="version_generator= needs version_column="):

        @entity(Registry(), table="vm_gen", version_generator=lambda v: 1)
        class Gen:
            id: Mapped[int] = column(primary_key=True)


def test_the_version_column_must_be_a_mapped_int_set_by_the_session() -> None:
    with pytest.raises(ArgumentError, match=r"version_column='vers'.*no mapped attribute"):

        @entity(Registry(), table="v1", version_column="vers")
        class A:
            id: Mapped[int] = column(primary_key=True)
            version: Mapped[int] = column(init=False)

    with pytest.raises(ArgumentError, match=r"B\.version.*Mapped\[int\]"):

        @entity(Registry(), table="v2", version_column="version")
        class B:
            id: Mapped[int] = column(primary_key=True)
            version: Mapped[str] = column(init=False)

    with pytest.raises(ArgumentError, match=r"C\.version.*column\(init=False\)"):

        @entity(Registry(), table="v3", version_column="version")
        class C:
            id: Mapped[int] = column(primary_key=True)
            version: Mapped[int] = column(default=0)

    with pytest.raises(ArgumentError, match=r"D\.version.*server_default"):

        @entity(Registry(), table="v4", version_column="version", version_generator=False)
        class D:
            id: Mapped[int] = column(primary_key=True)
            version: Mapped[int] = column(init=False)
