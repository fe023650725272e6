"""Horizontal sharding (issue 16, item 4): one session, one table on three databases.

Weather reports are stored by continent, each continent on its own shard: three SQLite
files, or three PostgreSQL databases created here. Every shard generates its own keys,
so the first report of each shard has id 1: three rows with one primary key, which the
session tells apart by their identity token.
"""

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BindParameter, Engine, String, create_engine, select
from sqlalchemy.exc import IntegrityError, InvalidRequestError, UnboundExecutionError
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.elements import BinaryExpression

from tests.conftest import SQLCapture, reachable_server_url
from tests.integration.helpers import db_rows, lifecycle, postgresql_database
from typed_session import (
    IdentityKey,
    Mapped,
    ObjectState,
    Registry,
    ShardedSession,
    column,
    entity,
    identity_key,
    instance_state,
)

reg = Registry()


@entity(reg, table="sh_reports")
class Report:
    id: Mapped[int] = column(primary_key=True, init=False)
    continent: Mapped[str] = column(String(20))
    temperature: Mapped[float]


SHARD_OF = {"europe": "eu", "asia": "asia", "north america": "na"}
SHARDS = ("eu", "asia", "na")


def by_continent(entity: type[Any], instance: Any) -> Hashable:
    """The shard chooser: a report goes to its continent's shard."""
    assert entity is Report
    return SHARD_OF[instance.continent]


def continents_in(statement: Executable) -> list[Hashable]:
    """The query chooser: the shards of `continent == value` in the WHERE clause, else all."""
    where = getattr(statement, "whereclause", None)
    found: list[Hashable] = []
    if where is not None:
        for node in visitors.iterate(where):
            if (
                isinstance(node, BinaryExpression)
                and getattr(node.left, "key", None) == "continent"
                and isinstance(node.right, BindParameter)
            ):
                found.append(SHARD_OF[str(node.right.value)])
    return found or list(SHARDS)


@dataclass
class Shards:
    engines: dict[str, Engine]
    captures: dict[str, SQLCapture]
    opened: list[ShardedSession]

    def session(self, **choosers: Any) -> ShardedSession:
        choosers.setdefault("shard_chooser", by_continent)
        session = ShardedSession(self.engines, **choosers)
        self.opened.append(session)
        return session

    def selects(self) -> dict[str, int]:
        """How many SELECTs each shard received since the last clear()."""
        return {t: len(c.matching("SELECT")) for t, c in self.captures.items()}

    def clear(self) -> None:
        for capture in self.captures.values():
            capture.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def shards(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shards]:
    """Three shards with fresh tables, each engine's statements captured."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'{token}.db'}" for token in SHARDS]
    else:
        first = reachable_server_url("postgresql")
        urls = [postgresql_database(first, f"typed_session_shard_{t}") for t in SHARDS]
    engines = {t: create_engine(u) for t, u in zip(SHARDS, urls, strict=True)}
    for eng in engines.values():
        reg.drop_all(eng)
        reg.create_all(eng)
    captures = {t: SQLCapture(e).attach() for t, e in engines.items()}
    found = Shards(engines, captures, [])
    try:
        yield found
    finally:
        for session in found.opened:
            session.close()
        for capture in captures.values():
            capture.detach()
        for eng in engines.values():
            reg.drop_all(eng)
            eng.dispose()


def _fill(shards: Shards) -> None:
    session = shards.session()
    session.add_all(
        [
            Report(continent="europe", temperature=11.5),
            Report(continent="asia", temperature=25.0),
            Report(continent="north america", temperature=-3.0),
            Report(continent="europe", temperature=12.5),
        ]
    )
    session.commit()
    shards.clear()


def test_each_new_object_is_stored_on_the_shard_its_chooser_names(shards: Shards) -> None:
    session = shards.session()
    paris = Report(continent="europe", temperature=11.5)
    tokyo = Report(continent="asia", temperature=25.0)
    session.add_all([paris, tokyo])
    session.flush()
    assert instance_state(paris).identity_token == "eu"
    assert instance_state(tokyo).identity_token == "asia"
    session.commit()
    assert db_rows(shards.engines["eu"], select(Report.temperature)) == [(11.5,)]
    assert db_rows(shards.engines["asia"], select(Report.temperature)) == [(25.0,)]
    assert db_rows(shards.engines["na"], select(Report.temperature)) == []
    assert session.get_transaction() is None


def test_rows_with_one_primary_key_on_several_shards_live_side_by_side(shards: Shards) -> None:
    _fill(shards)
    session = shards.session()
    reports = session.scalars(select(Report).order_by(Report.id)).all()
    firsts = [r for r in reports if r.id == 1]
    assert len(reports) == 4  # merged: every shard's rows, shard after shard
    assert sorted(r.continent for r in firsts) == ["asia", "europe", "north america"]
    assert len({id(r) for r in firsts}) == 3
    keys = {identity_key(instance=r) for r in firsts}
    assert keys == {IdentityKey(Report, (1,), t) for t in SHARDS}
    assert session.identity_map[IdentityKey(Report, (1,), "asia")].temperature == 25.0
    assert len(session.identity_map) == 4
    # a second query finds the same objects, each under its own token
    again = session.scalars(select(Report).where(Report.id == 1)).all()
    assert {id(r) for r in again} == {id(r) for r in firsts}


def test_get_with_an_identity_token_reads_that_shard_only(shards: Shards) -> None:
    _fill(shards)
    session = shards.session()
    tokyo = session.get(Report, 1, identity_token="asia")
    assert tokyo is not None
    assert tokyo.continent == "asia"
    assert instance_state(tokyo).identity_token == "asia"
    assert shards.selects() == {"eu": 0, "asia": 1, "na": 0}
    shards.clear()
    assert session.get(Report, 1, identity_token="asia") is tokyo  # the identity map
    assert session.get(Report, 2, identity_token="asia") is None
    assert shards.selects() == {"eu": 0, "asia": 1, "na": 0}
    with pytest.raises(InvalidRequestError, match=r"No such shard: 'africa'"):
        session.get(Report, 1, identity_token="africa")


def test_get_without_a_token_tries_the_shards_the_identity_chooser_names(shards: Shards) -> None:
    _fill(shards)
    asked: list[tuple[type[Any], tuple[Hashable, ...]]] = []

    def americas_first(entity: type[Any], primary_key: tuple[Hashable, ...]) -> Iterable[Hashable]:
        asked.append((entity, primary_key))
        return ["na", "eu"]

    session = shards.session(identity_chooser=americas_first)
    found = session.get(Report, 1)
    assert found is not None
    assert found.continent == "north america"
    assert asked == [(Report, (1,))]
    assert shards.selects() == {"eu": 0, "asia": 0, "na": 1}
    shards.clear()
    second = session.get(Report, 2)  # only Europe has a second report: na, then eu
    assert second is not None
    assert second.continent == "europe"
    assert shards.selects() == {"eu": 1, "asia": 0, "na": 1}
    shards.clear()
    assert session.get(Report, 1) is found  # the identity map of the first shard: no SQL
    assert shards.selects() == {"eu": 0, "asia": 0, "na": 0}
    assert session.get(Report, 3) is None  # on none of the chosen shards
    # the default identity chooser looks in every shard
    assert shards.session().get(Report, 3) is None
    assert shards.selects() == {"eu": 2, "asia": 1, "na": 2}


def test_a_select_runs_on_the_shards_the_query_chooser_names(shards: Shards) -> None:
    _fill(shards)
    session = shards.session(query_chooser=continents_in)
    europe = session.scalars(select(Report).where(Report.continent == "europe")).all()
    assert sorted(r.temperature for r in europe) == [11.5, 12.5]
    assert shards.selects() == {"eu": 1, "asia": 0, "na": 0}
    shards.clear()
    every = session.scalars(select(Report.temperature)).all()  # plain columns merge too
    assert sorted(every) == [-3.0, 11.5, 12.5, 25.0]
    assert shards.selects() == {"eu": 1, "asia": 1, "na": 1}
    shards.clear()
    rows = session.execute(
        select(Report, Report.temperature * 2).where(Report.continent == "asia")
    ).all()
    assert [(r.continent, doubled) for r, doubled in rows] == [("asia", 50.0)]
    assert instance_state(rows[0][0]).identity_token == "asia"


def test_the_identity_token_execution_option_picks_one_shard(shards: Shards) -> None:
    _fill(shards)
    session = shards.session(query_chooser=continents_in)
    na = session.scalars(select(Report), execution_options={"identity_token": "na"}).all()
    assert [r.continent for r in na] == ["north america"]
    on_statement = select(Report).execution_options(identity_token="asia")
    assert [r.continent for r in session.scalars(on_statement)] == ["asia"]
    assert shards.selects() == {"eu": 0, "asia": 1, "na": 1}


def test_updates_deletes_and_reloads_go_to_the_objects_own_shard(shards: Shards) -> None:
    _fill(shards)
    session = shards.session()
    tokyo = session.get(Report, 1, identity_token="asia")
    chicago = session.get(Report, 1, identity_token="na")
    assert tokyo is not None
    assert chicago is not None
    tokyo.temperature = 30.0
    session.delete(chicago)
    session.commit()
    assert db_rows(shards.engines["asia"], select(Report.temperature)) == [(30.0,)]
    assert db_rows(shards.engines["na"], select(Report.id)) == []
    assert sorted(db_rows(shards.engines["eu"], select(Report.temperature))) == [
        (11.5,),
        (12.5,),
    ]
    shards.clear()
    assert tokyo.temperature == 30.0  # expired by the commit, reloaded from Asia
    assert shards.selects() == {"eu": 0, "asia": 1, "na": 0}
    session.refresh(tokyo)
    assert shards.selects() == {"eu": 0, "asia": 2, "na": 0}


def test_one_primary_key_on_two_shards_is_no_conflict(shards: Shards) -> None:
    _fill(shards)
    session = shards.session()
    assert session.get(Report, 1, identity_token="eu") is not None
    seoul = Report(continent="asia", temperature=5.0)
    rome = Report(continent="europe", temperature=9.0)
    seoul.id = rome.id = 7  # one key, two shards, one flush
    session.add_all([seoul, rome])
    session.commit()
    assert db_rows(shards.engines["asia"], select(Report.id).where(Report.id == 7)) == [(7,)]
    assert db_rows(shards.engines["eu"], select(Report.id).where(Report.id == 7)) == [(7,)]
    lima = Report(continent="asia", temperature=20.0)
    lima.id = 1  # Europe's id 1 is in the session, Asia's is not: the database refuses
    session.add(lima)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert lifecycle(lima) is ObjectState.TRANSIENT
    assert instance_state(lima).identity_token is None  # chosen again when added again


def test_a_pending_object_is_placed_when_flushed_not_when_added(shards: Shards) -> None:
    session = shards.session()
    report = Report(continent="europe", temperature=1.0)
    session.add(report)
    report.continent = "asia"  # changed its mind before the flush
    session.commit()
    assert instance_state(report).identity_token == "asia"
    assert db_rows(shards.engines["asia"], select(Report.continent)) == [("asia",)]
    assert db_rows(shards.engines["eu"], select(Report.continent)) == []


def test_a_chooser_naming_no_shard_is_refused_before_any_sql(shards: Shards) -> None:
    session = shards.session(shard_chooser=lambda _entity, _obj: "africa")
    report = Report(continent="europe", temperature=1.0)
    session.add(report)
    with pytest.raises(InvalidRequestError, match=r"No such shard: 'africa' \(for new object"):
        session.flush()
    assert lifecycle(report) is ObjectState.PENDING
    assert all(not c.statements for c in shards.captures.values())
    nowhere = shards.session(query_chooser=lambda _statement: [])
    with pytest.raises(InvalidRequestError, match="query chooser chose no shard"):
        nowhere.scalars(select(Report)).all()


def test_get_bind_names_a_shard_only_with_a_token(shards: Shards) -> None:
    session = shards.session()
    assert session.get_bind(Report, identity_token="na") is shards.engines["na"]
    with pytest.raises(UnboundExecutionError, match="Could not locate a bind for Report"):
        session.get_bind(Report)


def test_two_phase_commit_across_shards(shards: Shards) -> None:
    if shards.engines["eu"].dialect.name == "sqlite":
        return  # SQLite has no PREPARE: test_twophase.py checks its clear refusal
    twophase = ShardedSession(shards.engines, shard_chooser=by_continent, twophase=True)
    shards.opened.append(twophase)
    twophase.add_all(
        [Report(continent="europe", temperature=1.0), Report(continent="asia", temperature=2.0)]
    )
    twophase.prepare()
    root = twophase.get_transaction()
    assert root is not None
    assert len(root.connections) == 2
    twophase.commit()
    assert db_rows(shards.engines["eu"], select(Report.temperature)) == [(1.0,)]
    assert db_rows(shards.engines["asia"], select(Report.temperature)) == [(2.0,)]


def test_reading_a_relationship_of_a_sharded_object_says_how_to_load_it(tmp_path: Path) -> None:
    from typed_session import relationship

    rel_reg = Registry()

    @entity(rel_reg, table="shr_parent")
    class Parent:
        id: Mapped[int] = column(primary_key=True, init=False)
        region: Mapped[str] = column(String(20))
        kids: Mapped[list["Kid"]] = relationship(
            default_factory=list, back_populates=lambda: Kid.parent
        )

    @entity(rel_reg, table="shr_kid")
    class Kid:
        id: Mapped[int] = column(primary_key=True, init=False)
        parent_id: Mapped[int] = column(foreign_key="shr_parent.id", init=False)
        parent: Mapped[Parent | None] = relationship(default=None, back_populates="kids")

    engines = {t: create_engine(f"sqlite:///{tmp_path / f'rel_{t}.db'}") for t in ("a", "b")}
    for eng in engines.values():
        rel_reg.create_all(eng)

    def with_parent(entity: type[Any], obj: Any) -> Hashable:
        return obj.region if isinstance(obj, Parent) else with_parent(Parent, obj.parent)

    try:
        with ShardedSession(engines, shard_chooser=with_parent) as writer:
            parent = Parent(region="b")
            parent.kids.append(Kid())
            writer.add(parent)
            writer.commit()  # the kid goes to its parent's shard
        with engines["b"].connect() as conn:
            assert conn.execute(select(Kid.parent_id)).scalars().all() == [1]
        with ShardedSession(engines, shard_chooser=with_parent) as reader:
            (loaded,) = reader.scalars(select(Parent)).all()
            with pytest.raises(UnboundExecutionError, match="Relationships of sharded objects"):
                _ = loaded.kids
            on_b = select(Kid).execution_options(identity_token="b")
            assert [k.parent_id for k in reader.scalars(on_b)] == [1]
    finally:
        for eng in engines.values():
            eng.dispose()
