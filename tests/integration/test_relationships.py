"""Relationships end to end, on every backend, with foreign keys enforced.

Parents and children (one-to-many / many-to-one with ``back_populates``), a tree
(self-referential), a one-to-one, and a many-to-many through an association table: both
sides kept in sync in memory, keys filled in at flush in dependency order, cascades,
orphans, lazy and ``selectinload`` loading, counted in statements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, Table, select

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_rows, lifecycle, recreate_tables, table_of
from typed_session import (
    DetachedInstanceError,
    FlushError,
    Mapped,
    ObjectState,
    Registry,
    Session,
    column,
    entity,
    raiseload,
    relationship,
    selectinload,
)

reg = Registry()


@entity(reg, table="rel_parent")
class Parent:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    children: Mapped[list[Child]] = relationship(
        default_factory=list,
        back_populates=lambda: Child.parent,
        cascade="all, delete-orphan",
        order_by=lambda: Child.id,
    )


@entity(reg, table="rel_child")
class Child:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    parent_id: Mapped[int] = column(foreign_key="rel_parent.id", init=False)
    parent: Mapped[Parent | None] = relationship(default=None, back_populates="children")


@entity(reg, table="rel_owner")
class Owner:
    """Its pets are released (key set NULL), not deleted, when the owner goes."""

    id: Mapped[int] = column(primary_key=True, init=False)
    pets: Mapped[list[Pet]] = relationship(default_factory=list, back_populates="owner")


@entity(reg, table="rel_pet")
class Pet:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    owner_id: Mapped[int | None] = column(foreign_key="rel_owner.id", default=None, init=False)
    owner: Mapped[Owner | None] = relationship(default=None, back_populates="pets")


@entity(reg, table="rel_author")
class Author:
    """Its books' key is NOT NULL, and it has no delete-orphan cascade."""

    id: Mapped[int] = column(primary_key=True, init=False)
    books: Mapped[list[Book]] = relationship(default_factory=list, back_populates="author")


@entity(reg, table="rel_book")
class Book:
    id: Mapped[int] = column(primary_key=True, init=False)
    title: Mapped[str]
    author_id: Mapped[int] = column(foreign_key="rel_author.id", init=False)
    author: Mapped[Author | None] = relationship(default=None, back_populates="books")


@entity(reg, table="rel_node")
class Node:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    parent_id: Mapped[int | None] = column(foreign_key="rel_node.id", default=None, init=False)
    parent: Mapped[Node | None] = relationship(default=None, back_populates="children")
    children: Mapped[list[Node]] = relationship(
        default_factory=list, back_populates="parent", cascade="all"
    )


post_tags = Table(
    "rel_post_tag",
    reg.metadata,
    Column("post_id", Integer, ForeignKey("rel_post.id"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("rel_tag.id"), primary_key=True),
)


@entity(reg, table="rel_post")
class Post:
    id: Mapped[int] = column(primary_key=True, init=False)
    title: Mapped[str]
    tags: Mapped[list[Tag]] = relationship(
        default_factory=list, secondary=post_tags, back_populates="posts"
    )


@entity(reg, table="rel_tag")
class Tag:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    posts: Mapped[set[Post]] = relationship(
        default_factory=set, secondary=post_tags, back_populates="tags"
    )


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def family(session: Session[Engine], n: int = 2) -> Parent:
    parent = Parent(name="mum", children=[Child(name=f"kid{i}") for i in range(n)])
    session.add(parent)
    session.commit()
    assert parent.id  # loaded again: the caller may close the session
    return parent


# -- in memory ------------------------------------------------------------------------


def test_append_sets_the_other_side_and_assignment_appends() -> None:
    mum = Parent(name="mum")
    kid = Child(name="kid")
    mum.children.append(kid)
    assert [kid.parent] == [mum]
    other = Child(name="other", parent=mum)
    assert mum.children == [kid, other]
    mum.children.remove(kid)
    assert [kid.parent] == [None]
    dad = Parent(name="dad")
    other.parent = dad
    assert mum.children == []
    assert dad.children == [other]


def test_replacing_a_collection_moves_both_sides() -> None:
    mum = Parent(name="mum")
    a, b, c = Child(name="a"), Child(name="b"), Child(name="c")
    mum.children = [a, b]
    mum.children = [b, c]
    assert (a.parent, b.parent, c.parent) == (None, mum, mum)
    assert mum.children == [b, c]


def test_a_wrong_class_is_refused_and_nothing_changes() -> None:
    mum = Parent(name="mum")
    with pytest.raises(TypeError, match=r"Parent\.children takes Child objects, not Pet"):
        mum.children.append(Pet(name="rex"))  # type: ignore[arg-type]  # the point
    assert mum.children == []
    with pytest.raises(TypeError, match=r"Child\.parent takes Parent objects"):
        Child(name="kid").parent = Owner()  # type: ignore[assignment]  # the point


def test_many_to_many_sides_stay_in_sync() -> None:
    post = Post(title="p")
    tag = Tag(name="t")
    post.tags.append(tag)
    assert tag.posts == {post}
    tag.posts.discard(post)
    assert post.tags == []


# -- flush ----------------------------------------------------------------------------


def test_children_get_the_generated_parent_key_in_one_flush(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    parent = family(session, 3)
    assert [c.parent_id for c in parent.children] == [parent.id] * 3
    rows = db_rows(engine, select(table_of(Child).c.name, table_of(Child).c.parent_id))
    assert sorted(rows) == [(f"kid{i}", parent.id) for i in range(3)]


def test_children_added_through_the_parent_join_the_session(session: Session[Engine]) -> None:
    parent = Parent(name="mum")
    session.add(parent)
    kid = Child(name="kid")
    parent.children.append(kid)
    assert kid in session.new
    assert lifecycle(kid) is ObjectState.PENDING


def test_moving_a_child_to_another_parent(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions()
    mum = family(session, 2)
    dad = Parent(name="dad")
    session.add(dad)
    kid = mum.children[0]
    dad.children.append(kid)
    session.commit()
    assert kid.parent_id == dad.id
    with sessions() as fresh:
        reloaded = fresh.get_one(Parent, dad.id)
        assert [c.name for c in reloaded.children] == [kid.name]
        assert len(fresh.get_one(Parent, mum.id).children) == 1


def test_a_removed_child_of_delete_orphan_is_deleted(
    engine: Engine, session: Session[Engine]
) -> None:
    parent = family(session, 2)
    gone = parent.children.pop(0)
    session.commit()
    assert lifecycle(gone) is ObjectState.DETACHED
    assert db_count(engine, Child) == 1


def test_an_orphan_added_and_removed_before_flush_is_never_inserted(
    engine: Engine, session: Session[Engine]
) -> None:
    parent = family(session, 1)
    kid = Child(name="brief")
    parent.children.append(kid)
    assert kid in session.new
    parent.children.remove(kid)
    assert kid not in session
    session.commit()
    assert db_count(engine, Child) == 1


def test_a_pending_orphan_is_refused_before_any_sql(
    session: Session[Engine], capture: SQLCapture
) -> None:
    session.add(Child(name="nobody's"))
    capture.clear()
    with pytest.raises(FlushError, match=r"is an unsaved, pending instance and is an orphan"):
        session.flush()
    assert capture.statements == []


def test_deleting_a_parent_deletes_its_children_by_cascade(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    parent = family(session, 3)
    session.close()
    with sessions() as fresh:  # children not loaded: the delete cascade loads them
        fresh.delete(fresh.get_one(Parent, parent.id))
        fresh.commit()
    assert db_count(engine, Child) == 0
    assert db_count(engine, Parent) == 0


def test_deleting_a_parent_without_delete_cascade_releases_its_children(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    owner = Owner(pets=[Pet(name="rex"), Pet(name="tom")])
    session.add(owner)
    session.commit()
    pets = list(owner.pets)
    session.delete(owner)
    session.commit()
    assert [p.owner_id for p in pets] == [None, None]
    assert sorted(db_rows(engine, select(table_of(Pet).c.owner_id))) == [(None,), (None,)]


def test_a_child_whose_parent_is_deleted_in_the_same_flush(
    engine: Engine, session: Session[Engine]
) -> None:
    owner = Owner(pets=[Pet(name="rex")])
    other = Owner()
    session.add_all([owner, other])
    session.commit()
    pet = owner.pets[0]
    pet.owner = other
    session.delete(owner)
    session.commit()
    assert db_rows(engine, select(table_of(Pet).c.owner_id)) == [(other.id,)]


def test_a_child_removed_from_a_not_null_key_without_orphan_cascade_is_refused(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    author = Author(books=[Book(title="b")])
    session.add(author)
    session.commit()
    book = author.books.pop()
    capture.clear()
    with pytest.raises(FlushError, match=r"Dependency rule tried to blank-out NOT NULL column"):
        session.flush()
    assert capture.matching("UPDATE") == []
    assert book.author_id == author.id  # nothing was changed
    author.books.append(book)
    session.commit()
    assert db_rows(engine, select(table_of(Book).c.author_id)) == [(author.id,)]


def test_a_tree_goes_in_one_flush_one_insert_per_level(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    root = Node(name="root")
    for i in range(3):
        branch = Node(name=f"b{i}", parent=root)
        for j in range(4):
            Node(name=f"b{i}l{j}", parent=branch)
    session.add(root)
    capture.clear()
    session.commit()
    inserts = capture.matching("INSERT")
    assert len(inserts) <= 3 or engine.dialect.name == "mariadb"  # per row on MariaDB
    node = table_of(Node)
    rows = dict(db_rows(engine, select(node.c.name, node.c.parent_id)))
    names = dict(db_rows(engine, select(node.c.id, node.c.name)))
    assert rows["root"] is None
    assert names[rows["b1"]] == "root"
    assert names[rows["b2l3"]] == "b2"


def test_deleting_a_tree_deletes_leaves_first(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions()
    root = Node(name="root", children=[Node(name="a", children=[Node(name="a1")]), Node(name="b")])
    session.add(root)
    session.commit()
    root_id = root.id
    session.close()
    with sessions() as fresh:
        fresh.delete(fresh.get_one(Node, root_id))
        fresh.commit()
    assert db_count(engine, Node) == 0


def test_a_cycle_between_rows_is_refused_before_any_sql(
    session: Session[Engine], capture: SQLCapture
) -> None:
    a = Node(name="a")
    b = Node(name="b", parent=a)
    a.parent = b
    session.add(a)
    capture.clear()
    with pytest.raises(FlushError, match="Circular dependency detected"):
        session.flush()
    assert capture.statements == []


def test_many_to_many_rows(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions()
    red, blue = Tag(name="red"), Tag(name="blue")
    post = Post(title="hello", tags=[red, blue])
    session.add(post)
    session.commit()
    assert sorted(db_rows(engine, select(post_tags.c.tag_id))) == sorted([(red.id,), (blue.id,)])
    post.tags.remove(red)
    session.commit()
    assert db_rows(engine, select(post_tags.c.tag_id)) == [(blue.id,)]
    post.tags.clear()
    session.commit()
    assert db_rows(engine, select(post_tags)) == []
    blue.posts.add(post)
    session.commit()
    session.delete(post)
    session.commit()
    assert db_rows(engine, select(post_tags)) == []
    assert db_count(engine, Tag) == 2


# -- loading --------------------------------------------------------------------------


def test_lazy_load_of_a_collection_and_many_to_one_from_the_identity_map(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    parent = family(session, 2)
    session.close()
    with sessions() as fresh:
        loaded = fresh.get_one(Parent, parent.id)
        capture.clear()
        kids = loaded.children
        assert [k.name for k in kids] == ["kid0", "kid1"]
        assert len(capture.matching("SELECT")) == 1
        capture.clear()
        assert kids[0].parent is loaded
        assert capture.statements == []


def test_selectinload_is_a_fixed_number_of_queries(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    for i in range(5):
        session.add(Parent(name=f"p{i}", children=[Child(name=f"c{i}{j}") for j in range(3)]))
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        parents = fresh.scalars(select(Parent).options(selectinload(Parent.children))).all()
        names = [[c.name for c in p.children] for p in parents]
        assert len(capture.matching("SELECT")) == 2
        assert names == [[f"c{i}{j}" for j in range(3)] for i in range(5)]


def test_nested_selectinload(sessions: SessionFactory, capture: SQLCapture) -> None:
    session = sessions()
    session.add(
        Node(
            name="r",
            children=[Node(name=f"n{i}", children=[Node(name=f"n{i}x")]) for i in range(3)],
        )
    )
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        roots = fresh.scalars(
            select(Node)
            .where(Node.parent_id.is_(None))
            .options(selectinload(Node.children).selectinload(Node.children))
        ).all()
        tree = [(n.name, [g.name for g in n.children]) for r in roots for n in r.children]
        assert len(capture.matching("SELECT")) == 3
        assert tree == [(f"n{i}", [f"n{i}x"]) for i in range(3)]


def test_raiseload_refuses_lazy_io(sessions: SessionFactory) -> None:
    session = sessions()
    family(session, 1)
    session.close()
    with sessions() as fresh:
        (parent,) = fresh.scalars(select(Parent).options(raiseload(Parent.children))).all()
        with pytest.raises(Exception, match=r"'Parent\.children' is not available due to"):
            _ = parent.children


def test_a_detached_object_says_which_relationship_and_what_to_do(
    sessions: SessionFactory,
) -> None:
    session = sessions()
    parent = family(session, 1)
    session.close()
    with pytest.raises(DetachedInstanceError, match=r"lazy load operation of attribute 'children'"):
        _ = parent.children


def test_join_on_the_relationship(sessions: SessionFactory) -> None:
    session = sessions()
    family(session, 2)
    names = session.scalars(
        select(Child.name).join_from(Child, Parent).where(Parent.name == "mum")
    ).all()
    assert sorted(names) == ["kid0", "kid1"]
    parents = session.scalars(
        select(Parent).join(Parent.children).where(Child.name == "kid1")
    ).all()
    assert [p.name for p in parents] == ["mum"]
