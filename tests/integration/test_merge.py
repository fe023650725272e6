"""``merge``, ``merge_all`` and ``delete_all`` on every backend: the seed's rules, cascades."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import InvalidRequestError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_rows, lifecycle, recreate_tables, table_of
from typed_session import Mapped, ObjectState, Registry, Session, column, entity, relationship

reg = Registry()


@entity(reg, table="mg_album")
class Album:
    id: Mapped[int] = column(primary_key=True, autoincrement=False)
    title: Mapped[str]
    songs: Mapped[list[Song]] = relationship(
        default_factory=list, back_populates="album", cascade="all, delete-orphan"
    )


@entity(reg, table="mg_song")
class Song:
    id: Mapped[int] = column(primary_key=True, autoincrement=False)
    name: Mapped[str]
    album_id: Mapped[int | None] = column(foreign_key="mg_album.id", default=None, init=False)
    album: Mapped[Album | None] = relationship(default=None, back_populates="songs")


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def saved(sessions: SessionFactory) -> None:
    with sessions() as s:
        s.add(Album(id=1, title="first", songs=[Song(id=1, name="a"), Song(id=2, name="b")]))
        s.commit()


def test_a_transient_object_without_a_row_becomes_a_pending_copy(
    engine: Engine, session: Session[Engine]
) -> None:
    given = Album(id=7, title="new")
    merged = session.merge(given)
    assert merged is not given
    assert lifecycle(given) is ObjectState.TRANSIENT
    assert lifecycle(merged) is ObjectState.PENDING
    assert (merged.id, merged.title) == (7, "new")
    session.commit()
    assert db_rows(engine, select(table_of(Album).c.title)) == [("new",)]


def test_a_detached_object_is_copied_onto_the_loaded_row(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    saved(sessions)
    detached = Album(id=1, title="renamed")  # stands for an object from elsewhere
    with sessions() as s:
        capture.clear()
        merged = s.merge(detached)
        assert len(capture.matching("SELECT")) == 1  # loaded by key
        assert merged.title == "renamed"
        assert merged in s.dirty
        assert detached not in s
        s.commit()
    assert db_rows(engine, select(table_of(Album).c.title)) == [("renamed",)]


def test_the_object_in_the_identity_map_is_the_one_merged_into(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    saved(sessions)
    with sessions(expire_on_commit=False) as s:
        mine = s.get_one(Album, 1)
        capture.clear()
        merged = s.merge(Album(id=1, title="other"))
        assert merged is mine
        assert mine.title == "other"
        assert capture.statements == []


def test_merge_cascades_to_children(engine: Engine, sessions: SessionFactory) -> None:
    saved(sessions)
    outside = Album(id=1, title="first", songs=[Song(id=2, name="b2"), Song(id=3, name="c")])
    with sessions() as s:
        merged = s.merge(outside)
        assert sorted((song.id, song.name) for song in merged.songs) == [(2, "b2"), (3, "c")]
        assert all(song not in s for song in outside.songs)
        s.commit()
    # song 1 left the album: an orphan, deleted; 2 updated; 3 inserted
    songs = sorted(db_rows(engine, select(table_of(Song).c.id, table_of(Song).c.name)))
    assert songs == [(2, "b2"), (3, "c")]


def test_load_false_refuses_transient_and_modified_objects(session: Session[Engine]) -> None:
    with pytest.raises(InvalidRequestError, match="does not support objects transient"):
        session.merge(Album(id=5, title="x"), load=False)
    saved_album = Album(id=9, title="y")
    session.add(saved_album)
    session.commit()
    saved_album.title = "changed"
    with pytest.raises(InvalidRequestError, match="does not support objects marked as 'dirty'"):
        session.merge(saved_album, load=False)


def test_load_false_attaches_a_copy_without_sql(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    saved(sessions)
    with sessions(expire_on_commit=False) as s:
        clean = s.get_one(Album, 1)
        s.expunge(clean)
    with sessions() as other:
        capture.clear()
        copy = other.merge(clean, load=False)
        assert capture.statements == []
        assert lifecycle(copy) is ObjectState.PERSISTENT
        assert copy.title == "first"
        assert copy not in other.dirty


def test_merge_all_merges_a_shared_object_once_and_delete_all(
    engine: Engine, sessions: SessionFactory
) -> None:
    saved(sessions)
    album = Album(id=1, title="first")
    one, two = Song(id=1, name="a", album=album), Song(id=2, name="b", album=album)
    with sessions() as s:
        merged = s.merge_all([one, two])
        assert merged[0].album is merged[1].album
        s.delete_all(merged)
        s.commit()
    assert db_count(engine, Song) == 0
