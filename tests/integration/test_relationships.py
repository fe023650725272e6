"""Relationships end to end, on every backend, with foreign keys enforced.

Parents and children (one-to-many / many-to-one with ``back_populates``), a tree
(self-referential), a one-to-one, and a many-to-many through an association table: both
sides kept in sync in memory, keys filled in at flush in dependency order, cascades,
orphans, lazy and ``selectinload`` loading, counted in statements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, String, Table, select, update
from sqlalchemy.exc import InvalidRequestError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_rows, lifecycle, recreate_tables, table_of
from typed_session import (
    DetachedInstanceError,
    FlushError,
    LoaderOption,
    Mapped,
    ObjectState,
    ObjectStateError,
    Registry,
    Session,
    column,
    entity,
    inspect_entity,
    instance_state,
    join_on,
    joinedload,
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
    for _ in recreate_tables(reg, engine):
        yield
        with engine.begin() as conn:  # rows that reference each other cannot be dropped
            conn.execute(update(teams).values(captain_id=None))


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
    with pytest.raises(
        FlushError, match=r"Dependency rule tried to blank-out NOT NULL column"
    ) as err:
        session.flush()
    assert "cascade='all, delete-orphan' on Author.books" in str(err.value)
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
    assert len(capture.matching("INSERT")) == 3  # one batch per level
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


def grandchildren_loaded_with(
    sessions: SessionFactory, capture: SQLCapture, n: int, option: LoaderOption[Node]
) -> list[tuple[str, list[str]]]:
    """A root with ``n`` children of one child each, read back with ``option``."""
    session = sessions()
    session.add(
        Node(
            name="r",
            children=[Node(name=f"n{i}", children=[Node(name=f"n{i}x")]) for i in range(n)],
        )
    )
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        roots = fresh.scalars(select(Node).where(Node.parent_id.is_(None)).options(option)).all()
        return [(c.name, [g.name for g in c.children]) for r in roots for c in r.children]


def test_nested_selectinload(sessions: SessionFactory, capture: SQLCapture) -> None:
    tree = grandchildren_loaded_with(
        sessions, capture, 3, selectinload(Node.children).selectinload(Node.children)
    )
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


# -- cascades of the other operations, is_modified, refresh -------------------------------


def test_expire_follows_refresh_expire_and_expunge_follows_expunge(
    session: Session[Engine],
) -> None:
    parent = family(session, 2)
    kids = list(parent.children)
    assert all(instance_state(k).expired is None for k in kids)
    session.expire(parent)  # cascade="all" includes refresh-expire
    assert all(instance_state(k).expired for k in kids)
    kids = list(parent.children)  # loaded again (expiry dropped the collection)
    session.expunge(parent)  # and expunge, through what is loaded
    assert [lifecycle(k) for k in kids] == [ObjectState.DETACHED] * 2


def test_expire_without_the_cascade_leaves_related_objects_loaded(
    session: Session[Engine],
) -> None:
    owner = Owner(pets=[Pet(name="rex")])
    session.add(owner)
    session.commit()
    pet = owner.pets[0]
    assert pet.name == "rex"
    session.expire(owner)  # default cascade: save-update, merge
    assert instance_state(pet).expired is None


def test_refresh_a_relationship_by_name(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions(expire_on_commit=False)  # the collection stays loaded after commit
    parent = family(session, 1)
    assert len(parent.children) == 1
    with engine.begin() as conn:  # another writer adds a child behind the session's back
        conn.execute(table_of(Child).insert().values(name="late", parent_id=parent.id))
    assert len(parent.children) == 1  # loaded: no SQL
    session.refresh(parent, ["children"])
    assert sorted(c.name for c in parent.children) == ["kid0", "late"]
    with pytest.raises(AttributeError, match=r"has no mapped attribute\(s\) \['kids'\]"):
        session.refresh(parent, ["kids"])


def test_is_modified_counts_collection_changes_when_asked(session: Session[Engine]) -> None:
    parent = family(session, 1)
    assert not session.is_modified(parent)
    parent.children.append(Child(name="new"))
    assert session.is_modified(parent)
    assert not session.is_modified(parent, include_collections=False)
    session.flush()
    assert not session.is_modified(parent)


@entity(reg, table="rel_user")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    profile: Mapped[Profile | None] = relationship(
        default=None, back_populates="user", cascade="all, delete-orphan"
    )


@entity(reg, table="rel_profile")
class Profile:
    id: Mapped[int] = column(primary_key=True, init=False)
    bio: Mapped[str]
    user_id: Mapped[int] = column(foreign_key="rel_user.id", init=False)
    user: Mapped[User | None] = relationship(default=None, back_populates="profile")


def test_one_to_one_replace_deletes_the_old_with_delete_orphan(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    user = User(profile=Profile(bio="first"))
    session.add(user)
    session.commit()
    user_id = user.id
    session.close()
    with sessions() as fresh:
        loaded = fresh.get_one(User, user_id)
        old = loaded.profile  # a one-to-one loads as one object, not a list
        assert old is not None
        assert old.bio == "first"
        loaded.profile = Profile(bio="second")
        assert old.user is None
        fresh.commit()
    assert db_rows(engine, select(table_of(Profile).c.bio, table_of(Profile).c.user_id)) == [
        ("second", user_id)
    ]


teams = Table(
    "rel_team",
    reg.metadata,
    Column("id", Integer, primary_key=True),
    # the tables reference each other: this key is added after both tables exist
    Column(
        "captain_id",
        Integer,
        ForeignKey("rel_player.id", use_alter=True, name="fk_rel_team_captain"),
        nullable=True,
    ),
)


@entity(reg, table=teams)
class Team:
    """A team and its captain, who is one of its members: rows that need each other."""

    id: Mapped[int] = column(init=False)
    captain_id: Mapped[int | None] = column(default=None, init=False)
    captain: Mapped[Player | None] = relationship(
        default=None, foreign_keys=["captain_id"], post_update=True
    )
    players: Mapped[list[Player]] = relationship(default_factory=list, back_populates="team")


@entity(reg, table="rel_player")
class Player:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    team_id: Mapped[int | None] = column(foreign_key="rel_team.id", default=None, init=False)
    team: Mapped[Team | None] = relationship(
        default=None, back_populates="players", foreign_keys=[team_id]
    )


def test_post_update_writes_rows_that_need_each_other(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    team = Team()
    ann = Player(name="ann", team=team)
    team.captain = ann
    session.add(team)
    capture.clear()
    session.commit()
    assert len(capture.matching("UPDATE")) == 1  # the captain, once both rows exist
    rows = db_rows(engine, select(table_of(Team).c.id, table_of(Team).c.captain_id))
    assert rows == [(team.id, ann.id)]
    assert db_rows(engine, select(table_of(Player).c.team_id)) == [(team.id,)]


def test_foreign_keys_strings_and_lambdas_choose_the_same_key() -> None:
    team_rel = inspect_entity(Team).relationships["captain"]
    assert team_rel.key_pairs == (("id", "captain_id"),)
    players = inspect_entity(Team).relationships["players"]  # a collection: the many side
    assert players.key_pairs == (("id", "team_id"),)


# -- primary-key changes reach the children ----------------------------------------------

nations = Table(
    "rel_nation",
    reg.metadata,
    Column("code", String(8), primary_key=True),
    Column("name", String(50), nullable=False),
)
cities = Table(
    "rel_city",
    reg.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "nation_code", String(8), ForeignKey("rel_nation.code", onupdate="CASCADE"), nullable=False
    ),
)


@entity(reg, table=nations)
class Nation:
    code: Mapped[str]
    name: Mapped[str]
    cities: Mapped[list[City]] = relationship(default_factory=list, back_populates="nation")


@entity(reg, table=cities)
class City:
    id: Mapped[int] = column(init=False)
    nation_code: Mapped[str] = column(init=False)
    nation: Mapped[Nation | None] = relationship(default=None, back_populates="cities")


def test_a_key_change_reaches_children_through_on_update_cascade(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    nation = Nation(code="UK", name="Britain", cities=[City(), City()])
    session.add(nation)
    session.commit()
    kids = list(nation.cities)
    nation.code = "GB"
    capture.clear()
    session.flush()
    assert [c.nation_code for c in kids] == ["GB", "GB"]  # in memory, without an UPDATE
    assert len(capture.matching("UPDATE")) == 1  # the nation's key; the database did the rest
    session.commit()
    assert db_rows(engine, select(cities.c.nation_code)) == [("GB",), ("GB",)]


#: its own registry: MariaDB cannot even create a DEFERRABLE foreign key
deferred_reg = Registry()
regions = Table(
    "rel_region",
    deferred_reg.metadata,
    Column("code", String(8), primary_key=True),
)
towns = Table(
    "rel_town",
    deferred_reg.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "region_code",
        String(8),
        ForeignKey("rel_region.code", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
)


@entity(deferred_reg, table=regions)
class Region:
    code: Mapped[str]
    towns: Mapped[list[Town]] = relationship(
        default_factory=list, back_populates="region", passive_updates=False
    )


@entity(deferred_reg, table=towns)
class Town:
    id: Mapped[int] = column(init=False)
    region_code: Mapped[str] = column(init=False)
    region: Mapped[Region | None] = relationship(default=None, back_populates="towns")


def test_a_key_change_without_passive_updates_updates_the_children(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    if engine.dialect.name in ("mysql", "mariadb"):
        pytest.skip("MariaDB checks foreign keys at once (no DEFERRABLE): the ORM cannot move rows")
    for _ in recreate_tables(deferred_reg, engine):
        region_key_change(engine, sessions, capture)


def region_key_change(engine: Engine, sessions: SessionFactory, capture: SQLCapture) -> None:
    session = sessions()
    session.add(Region(code="N", towns=[Town(), Town()]))
    session.commit()
    session.close()
    with sessions() as fresh:
        region = fresh.get_one(Region, "N")  # its towns are not loaded: the flush loads them
        region.code = "NORTH"
        capture.clear()
        fresh.commit()
    assert len(capture.matching("UPDATE")) == 2  # the region, then its towns in one batch
    assert db_rows(engine, select(towns.c.region_code)) == [("NORTH",), ("NORTH",)]


# -- default loading strategies -------------------------------------------------------------


@entity(reg, table="rel_album")
class Album:
    id: Mapped[int] = column(primary_key=True, init=False)
    tracks: Mapped[list[Track]] = relationship(
        default_factory=list, back_populates="album", lazy="selectin"
    )
    credits: Mapped[list[Credit]] = relationship(default_factory=list, lazy="noload")


@entity(reg, table="rel_track")
class Track:
    id: Mapped[int] = column(primary_key=True, init=False)
    album_id: Mapped[int] = column(foreign_key="rel_album.id", init=False)
    album: Mapped[Album | None] = relationship(default=None, back_populates="tracks", lazy="raise")


@entity(reg, table="rel_credit")
class Credit:
    id: Mapped[int] = column(primary_key=True, init=False)
    album_id: Mapped[int | None] = column(foreign_key="rel_album.id", default=None, init=False)


def test_lazy_strategies_selectin_raise_and_noload(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    session.add_all([Album(tracks=[Track(), Track()], credits=[Credit()]) for _ in range(3)])
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        albums = fresh.scalars(select(Album)).all()
        assert [len(a.tracks) for a in albums] == [2, 2, 2]
        assert len(capture.matching("SELECT")) == 2  # albums, then every album's tracks
        assert [a.credits for a in albums] == [[], [], []]  # noload: never loaded
        track = fresh.scalars(select(Track)).first()
        assert track is not None
        assert track.album is not None  # set by the selectin load of Album.tracks: no SQL
        lone = fresh.get_one(Track, track.id + 1)
        fresh.expire(lone)
        with pytest.raises(Exception, match=r"'Track\.album' is not available due to lazy="):
            _ = lone.album


# -- joinedload -----------------------------------------------------------------------------


def test_joinedload_of_a_many_to_one_is_one_query(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    family(session, 3)
    session.close()
    with sessions() as fresh:
        capture.clear()
        kids = fresh.scalars(
            select(Child).options(joinedload(Child.parent)).order_by(Child.id)
        ).all()
        assert [k.name for k in kids] == ["kid0", "kid1", "kid2"]
        assert {k.parent.name for k in kids if k.parent is not None} == {"mum"}
        assert len(capture.matching("SELECT")) == 1
        assert "LEFT OUTER JOIN" in capture.matching("SELECT")[0].sql


def test_joinedload_of_a_collection_returns_each_parent_once(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    for i in range(3):
        session.add(Parent(name=f"p{i}", children=[Child(name=f"c{i}{j}") for j in range(2)]))
    session.add(Parent(name="childless"))
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        parents = fresh.scalars(
            select(Parent).options(joinedload(Parent.children)).order_by(Parent.id)
        ).all()
        assert [p.name for p in parents] == ["p0", "p1", "p2", "childless"]
        assert [[c.name for c in p.children] for p in parents] == [
            ["c00", "c01"],
            ["c10", "c11"],
            ["c20", "c21"],
            [],
        ]
        assert len(capture.matching("SELECT")) == 1
        rows = fresh.execute(
            select(Parent, Parent.name).options(joinedload(Parent.children)).order_by(Parent.id)
        ).all()
        assert [(p.name, n) for p, n in rows] == [(f"p{i}", f"p{i}") for i in range(3)] + [
            ("childless", "childless")
        ]


def test_nested_joinedload_then_selectinload(sessions: SessionFactory, capture: SQLCapture) -> None:
    tree = grandchildren_loaded_with(
        sessions, capture, 2, joinedload(Node.children).selectinload(Node.children)
    )
    assert sorted(tree) == [("n0", ["n0x"]), ("n1", ["n1x"])]
    assert len(capture.matching("SELECT")) == 2


def test_joinedload_of_a_collection_under_limit_is_refused(session: Session[Engine]) -> None:
    with pytest.raises(InvalidRequestError, match=r"use selectinload\(\) for it"):
        session.scalars(select(Parent).options(joinedload(Parent.children)).limit(2)).all()


def test_joinedload_of_a_many_to_many(sessions: SessionFactory, capture: SQLCapture) -> None:
    session = sessions()
    session.add(Post(title="p", tags=[Tag(name="a"), Tag(name="b")]))
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        (post,) = fresh.scalars(select(Post).options(joinedload(Post.tags))).all()
        assert sorted(t.name for t in post.tags) == ["a", "b"]
        assert len(capture.matching("SELECT")) == 1


def test_join_on_a_relationship_whose_tables_reference_each_other(
    session: Session[Engine],
) -> None:
    team = Team(players=[Player(name="ann"), Player(name="bob")])
    session.add(team)
    session.commit()
    names = session.scalars(
        select(Player.name).select_from(Team).join(Player, join_on(Team.players))
    ).all()
    assert sorted(names) == ["ann", "bob"]


# -- enable_relationship_loading, passive_deletes --------------------------------------------


def test_enable_relationship_loading_loads_by_the_foreign_key(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    owner = Owner(pets=[Pet(name="rex")])
    session.add(owner)
    session.commit()
    owner_id = owner.id
    stray = Pet(name="tom")
    stray.owner_id = owner_id  # a key set by hand: the relationship is not set
    assert [stray.owner] == [None]  # transient: nothing loads
    session.enable_relationship_loading(stray)
    loaded = stray.owner
    assert loaded is not None
    assert loaded.id == owner_id
    assert stray not in session
    with pytest.raises(ObjectStateError, match="enable_relationship_loading"):
        session.enable_relationship_loading(owner)


@entity(reg, table="rel_folder")
class Folder:
    id: Mapped[int] = column(primary_key=True, init=False)
    files: Mapped[list[File]] = relationship(
        default_factory=list, back_populates="folder", passive_deletes=True
    )


files = Table(
    "rel_file",
    reg.metadata,
    Column("id", Integer, primary_key=True),
    Column("folder_id", Integer, ForeignKey("rel_folder.id", ondelete="CASCADE"), nullable=False),
)


@entity(reg, table=files)
class File:
    id: Mapped[int] = column(init=False)
    folder_id: Mapped[int] = column(init=False)
    folder: Mapped[Folder | None] = relationship(default=None, back_populates="files")


def test_passive_deletes_leave_the_children_to_on_delete_cascade(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    session.add(Folder(files=[File(), File()]))
    session.commit()
    session.close()
    with sessions() as fresh:
        folder = fresh.scalars(select(Folder)).one()
        capture.clear()
        fresh.delete(folder)
        fresh.commit()
        assert capture.matching("SELECT") == []  # the files were not loaded
        assert len(capture.matching("DELETE")) == 1
    assert db_count(engine, File) == 0


def test_deleting_an_expired_parent_loads_its_children_before_marking_it(
    engine: Engine, session: Session[Engine]
) -> None:
    parent = family(session, 2)
    session.expire_all()
    session.add(Parent(name="pending"))  # the children's load autoflushes this INSERT
    session.delete(parent)  # its DELETE must not be flushed by that autoflush
    session.commit()
    assert db_count(engine, Child) == 0
    assert db_rows(engine, select(table_of(Parent).c.name)) == [("pending",)]


def test_a_child_unset_from_an_unloaded_parent_is_an_orphan(
    engine: Engine, session: Session[Engine]
) -> None:
    parent = family(session, 1)
    kid = parent.children[0]
    session.commit()  # both expired: the parent's collection is not loaded
    kid.parent = None
    session.commit()
    assert db_count(engine, Child) == 0


@entity(reg, table="rel_menu")
class Menu:
    id: Mapped[int] = column(primary_key=True, init=False)
    dishes: Mapped[list[Dish]] = relationship(default_factory=list, lazy="joined")


@entity(reg, table="rel_dish")
class Dish:
    id: Mapped[int] = column(primary_key=True, init=False)
    menu_id: Mapped[int | None] = column(foreign_key="rel_menu.id", default=None, init=False)


def test_lazy_joined_joins_by_default_and_selects_in_under_limit(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    session.add_all([Menu(dishes=[Dish(), Dish()]) for _ in range(3)])
    session.commit()
    session.close()
    with sessions() as fresh:
        capture.clear()
        menus = fresh.scalars(select(Menu).order_by(Menu.id)).all()
        assert [len(m.dishes) for m in menus] == [2, 2, 2]
        assert len(capture.matching("SELECT")) == 1
    with sessions() as fresh:
        capture.clear()
        first_two = fresh.scalars(select(Menu).order_by(Menu.id).limit(2)).all()
        assert [len(m.dishes) for m in first_two] == [2, 2]
        assert len(capture.matching("SELECT")) == 2  # no join under LIMIT: one IN query


def test_the_delete_cascade_refuses_a_child_of_another_session_and_marks_nothing(
    sessions: SessionFactory,
) -> None:
    mine, other = sessions(), sessions()
    parent = family(mine, 2)
    kids = list(parent.children)
    mine.expire(kids[1], ["parent"])  # so that adding it elsewhere cascades to nothing
    mine.expunge(kids[1])
    other.add(kids[1])  # now attached elsewhere, still in parent.children here
    with pytest.raises(ObjectStateError, match="already attached to session"):
        mine.delete(parent)
    assert list(mine.deleted) == []


def test_the_delete_cascade_attaches_a_detached_child(
    engine: Engine, session: Session[Engine]
) -> None:
    parent = family(session, 2)
    kids = list(parent.children)
    session.expunge(kids[0])  # detached, still in parent.children
    session.delete(parent)
    assert kids[0] in session.deleted
    session.commit()
    assert db_count(engine, Child) == 0
