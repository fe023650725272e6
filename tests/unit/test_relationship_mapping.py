"""Configuring relationships, and the tracked collections, without a database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, Table
from sqlalchemy.exc import ArgumentError

from typed_session import (
    Mapped,
    Registry,
    column,
    entity,
    inspect_entity,
    instance_state,
    make_transient_to_detached,
    relationship,
)
from typed_session._collections import TrackedList, TrackedSet
from typed_session._mapping.relationships import Direction, parse_cascade


def test_directions_and_pairs_are_read_from_the_foreign_keys() -> None:
    reg = Registry()

    @entity(reg, table="d_user")
    class User:
        id: Mapped[int] = column(primary_key=True)
        addresses: Mapped[list[Address]] = relationship(default_factory=list)
        profile: Mapped[Profile | None] = relationship(default=None)

    @entity(reg, table="d_address")
    class Address:
        id: Mapped[int] = column(primary_key=True)
        user_id: Mapped[int] = column(foreign_key="d_user.id")
        user: Mapped[User | None] = relationship(default=None)

    @entity(reg, table="d_profile")
    class Profile:
        id: Mapped[int] = column(primary_key=True)
        user_id: Mapped[int] = column(foreign_key="d_user.id")

    addresses = inspect_entity(User).relationships["addresses"]
    assert addresses.direction is Direction.ONE_TO_MANY
    assert addresses.key_pairs == (("id", "user_id"),)
    assert addresses.collection_class is list
    assert inspect_entity(Address).relationships["user"].direction is Direction.MANY_TO_ONE
    profile = inspect_entity(User).relationships["profile"]
    assert profile.direction is Direction.ONE_TO_MANY
    assert profile.uselist is False


def test_two_foreign_keys_need_foreign_keys_and_the_error_names_both() -> None:
    reg = Registry()

    @entity(reg, table="fk2_account")
    class Account:
        id: Mapped[int] = column(primary_key=True)

    @entity(reg, table="fk2_transfer")
    class Transfer:
        id: Mapped[int] = column(primary_key=True)
        source_id: Mapped[int] = column(foreign_key="fk2_account.id")
        target_id: Mapped[int] = column(foreign_key="fk2_account.id")
        source: Mapped[Account | None] = relationship(default=None)

    with pytest.raises(ArgumentError, match=r"source_id -> fk2_account.id and .*target_id"):
        reg.configure()

    reg2 = Registry()

    @entity(reg2, table="fk3_account")
    class Account2:
        id: Mapped[int] = column(primary_key=True)

    @entity(reg2, table="fk3_transfer")
    class Transfer2:
        id: Mapped[int] = column(primary_key=True)
        source_id: Mapped[int] = column(foreign_key="fk3_account.id")
        target_id: Mapped[int] = column(foreign_key="fk3_account.id")
        source: Mapped[Account2 | None] = relationship(default=None, foreign_keys=[lambda: None])

    with pytest.raises(ArgumentError, match="foreign_keys= takes mapped attributes"):
        reg2.configure()


def test_foreign_keys_chooses_among_several() -> None:
    reg = Registry()

    @entity(reg, table="fk4_account")
    class Account:
        id: Mapped[int] = column(primary_key=True)

    target_col = Column("target_id", Integer, ForeignKey("fk4_account.id"))
    transfers = Table(
        "fk4_transfer",
        reg.metadata,
        Column("id", Integer, primary_key=True),
        Column("source_id", Integer, ForeignKey("fk4_account.id")),
        target_col,
    )

    @entity(reg, table=transfers)
    class Transfer:
        id: Mapped[int] = column(primary_key=True)
        source_id: Mapped[int | None] = column(default=None)
        target_id: Mapped[int | None] = column(default=None)
        target: Mapped[Account | None] = relationship(default=None, foreign_keys=[target_col])

    rel = inspect_entity(Transfer).relationships["target"]
    assert rel.key_pairs == (("id", "target_id"),)
    assert Account.__name__ == "Account"


def test_configuration_errors_name_the_attribute() -> None:
    reg = Registry()

    @entity(reg, table="ce_a")
    class A:
        id: Mapped[int] = column(primary_key=True)
        bs: Mapped[list[B]] = relationship(default_factory=list, back_populates="nope")

    @entity(reg, table="ce_b")
    class B:
        id: Mapped[int] = column(primary_key=True)
        a_id: Mapped[int] = column(foreign_key="ce_a.id")

    with pytest.raises(ArgumentError, match=r"A\.bs has back_populates='nope', but B has no"):
        reg.configure()


def test_a_collection_on_the_foreign_key_side_is_refused() -> None:
    reg = Registry()

    @entity(reg, table="cs_a")
    class A:
        id: Mapped[int] = column(primary_key=True)

    @entity(reg, table="cs_b")
    class B:
        id: Mapped[int] = column(primary_key=True)
        a_id: Mapped[int] = column(foreign_key="cs_a.id")
        a: Mapped[list[A]] = relationship(default_factory=list)

    with pytest.raises(ArgumentError, match=r"annotate it Mapped\[A \| None\]"):
        reg.configure()


def test_no_foreign_key_at_all_says_how_to_add_one() -> None:
    reg = Registry()

    @entity(reg, table="nf_a")
    class A:
        id: Mapped[int] = column(primary_key=True)
        b: Mapped[B | None] = relationship(default=None)

    @entity(reg, table="nf_b")
    class B:
        id: Mapped[int] = column(primary_key=True)

    with pytest.raises(ArgumentError, match="no foreign key links nf_a and nf_b"):
        reg.configure()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("save-update, merge", "save-update, merge"),
        ("all", "save-update, merge, expunge, delete, refresh-expire"),
        (
            "all, delete-orphan",
            "save-update, merge, expunge, delete, delete-orphan, refresh-expire",
        ),
        ("none", ""),
    ],
)
def test_cascade_text(text: str, expected: str) -> None:
    assert str(parse_cascade(text, "X.y")) == expected


def test_an_unknown_cascade_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ArgumentError, match=r"X\.y: 'delete-orphans' is not a cascade"):
        parse_cascade("all, delete-orphans", "X.y")


class Hooks:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def check(self, item: object, /) -> None:
        if not isinstance(item, int):
            raise TypeError(item)

    def appended(self, owner: object, item: object, /) -> None:
        self.events.append(("+", item))

    def removed(self, owner: object, item: object, /) -> None:
        self.events.append(("-", item))


class Owner:
    pass


def test_tracked_list_reports_every_membership_change() -> None:
    hooks, owner = Hooks(), Owner()
    items: TrackedList[Any] = TrackedList(owner, hooks, [1, 2])
    items.append(3)
    items.extend([4])
    items.insert(0, 5)
    items.remove(2)
    items.pop()
    items[0] = 6
    items[0:1] = [7, 8]
    del items[0]
    items += [9]
    items.sort()
    items.clear()
    assert hooks.events == [
        ("+", 3),
        ("+", 4),
        ("+", 5),
        ("-", 2),
        ("-", 4),
        ("-", 5),
        ("+", 6),
        ("-", 6),
        ("+", 7),
        ("+", 8),
        ("-", 7),
        ("+", 9),
        ("-", 1),
        ("-", 3),
        ("-", 8),
        ("-", 9),
    ]
    with pytest.raises(TypeError):
        items.append("x")
    assert items == []
    assert type(list(items)) is list


def test_tracked_set_reports_every_membership_change() -> None:
    hooks, owner = Hooks(), Owner()
    items: TrackedSet[Any] = TrackedSet(owner, hooks, {1})
    items.add(1)  # already there: nothing
    items.add(2)
    items.discard(3)  # not there: nothing
    items.discard(1)
    items |= {4}
    items -= {4}
    items.update([5])
    assert sorted(hooks.events, key=str) == sorted(
        [("+", 2), ("-", 1), ("+", 4), ("-", 4), ("+", 5)], key=str
    )


def test_a_scalar_change_records_history_on_both_sides() -> None:
    reg = Registry()

    @entity(reg, table="h_parent")
    class P:
        id: Mapped[int] = column(primary_key=True)
        kids: Mapped[list[K]] = relationship(default_factory=list, back_populates="p")

    @entity(reg, table="h_kid")
    class K:
        id: Mapped[int] = column(primary_key=True)
        p_id: Mapped[int | None] = column(foreign_key="h_parent.id", default=None)
        p: Mapped[P | None] = relationship(default=None, back_populates="kids")

    new_parent, new_kid = P(id=1), K(id=1)
    new_kid.p = new_parent  # new objects: written from their values, no history kept
    assert instance_state(new_parent).related is None
    # whether it has a parent is recorded for delete-orphan relationships only
    assert instance_state(new_kid).parents is None

    parent, kid = P(id=2), K(id=2)
    make_transient_to_detached(parent)  # objects with rows: their changes are recorded
    make_transient_to_detached(kid)
    kid.p = parent
    parent_history = instance_state(parent).related
    kid_history = instance_state(kid).related
    assert parent_history is not None
    assert kid_history is not None
    assert list(parent_history["kids"].added.values()) == [kid]
    assert list(kid_history["p"].added.values()) == [parent]
    kid.p = None  # added, then removed: nothing left to write
    assert parent_history["kids"].added == {}
    assert parent_history["kids"].removed == {}


def test_having_a_parent_is_recorded_for_delete_orphan_relationships() -> None:
    reg = Registry()

    @entity(reg, table="o_parent")
    class P:
        id: Mapped[int] = column(primary_key=True)
        kids: Mapped[list[K]] = relationship(
            default_factory=list, back_populates="p", cascade="all, delete-orphan"
        )

    @entity(reg, table="o_kid")
    class K:
        id: Mapped[int] = column(primary_key=True)
        p_id: Mapped[int | None] = column(foreign_key="o_parent.id", default=None)
        p: Mapped[P | None] = relationship(default=None, back_populates="kids")

    parent, kid = P(id=1), K(id=1)
    kid.p = parent
    kids_rel = inspect_entity(P).relationships["kids"]
    assert (instance_state(kid).parents or {})[kids_rel] is True
    parent.kids.remove(kid)
    assert (instance_state(kid).parents or {})[kids_rel] is False
