"""``session.query(User)``: the legacy ``Query[T]`` over ``select(User)``, on every backend."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, String, select
from sqlalchemy.exc import InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import ExecutableOption

from tests.conftest import SQLCapture
from tests.integration.helpers import db_insert, recreate_tables, sql_for
from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="q_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(50))
    team: Mapped[str] = column(String(50), default="red")
    score: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def users(engine: Engine) -> None:
    """Four committed users: ann (red, 3), bob (blue, 1), cid (red, 2), dan (blue, 4)."""
    db_insert(
        engine,
        User,
        [
            {"name": "ann", "team": "red", "score": 3},
            {"name": "bob", "team": "blue", "score": 1},
            {"name": "cid", "team": "red", "score": 2},
            {"name": "dan", "team": "blue", "score": 4},
        ],
    )


def _names(found: list[User]) -> list[str]:
    return [u.name for u in found]


# -- results through the identity map, after an autoflush --------------------------------


@pytest.mark.usefixtures("users")
def test_all_gives_the_objects_of_the_identity_map(session: Session[Engine]) -> None:
    ann = session.scalars(select(User).where(User.name == "ann")).one()

    found = session.query(User).order_by(User.name).all()

    assert _names(found) == ["ann", "bob", "cid", "dan"]
    assert found[0] is ann
    assert session.get(User, found[1].id) is found[1]


@pytest.mark.usefixtures("users")
def test_a_query_does_not_overwrite_changes_not_flushed(session: Session[Engine]) -> None:
    ann = session.query(User).filter_by(name="ann").one()
    ann.score = 30
    with session.no_autoflush:
        again = session.query(User).filter(User.id == ann.id).one()

    assert again is ann
    assert ann.score == 30
    assert session.dirty == [ann]


def test_a_query_autoflushes_pending_objects_first(
    session: Session[Engine], capture: SQLCapture
) -> None:
    eve = User(name="eve")
    session.add(eve)

    found = session.query(User).all()

    assert found == [eve]
    assert len(sql_for(capture, "INSERT", User)) == 1


def test_no_autoflush_keeps_pending_objects_out_of_the_query(
    session: Session[Engine], capture: SQLCapture
) -> None:
    session.add(User(name="eve"))
    with session.no_autoflush:
        assert session.query(User).all() == []
        assert session.query(User).count() == 0
    assert sql_for(capture, "INSERT", User) == []


@pytest.mark.usefixtures("users")
def test_iterating_a_query_runs_it(session: Session[Engine]) -> None:
    assert [u.name for u in session.query(User).filter_by(team="blue").order_by(User.name)] == [
        "bob",
        "dan",
    ]


# -- refining --------------------------------------------------------------------------------


@pytest.mark.usefixtures("users")
def test_filter_and_filter_by_combine_with_and(session: Session[Engine]) -> None:
    query = session.query(User).filter(User.score > 1).filter_by(team="red")

    assert sorted(_names(query.all())) == ["ann", "cid"]
    assert _names(query.filter(User.name != "ann", User.score < 10).all()) == ["cid"]
    assert _names(session.query(User).filter_by(team="blue", score=4).all()) == ["dan"]


@pytest.mark.usefixtures("users")
def test_order_by_adds_terms_after_the_earlier_ones(session: Session[Engine]) -> None:
    by_team = session.query(User).order_by(User.team)

    assert _names(by_team.order_by(User.score).all()) == ["bob", "dan", "cid", "ann"]
    assert _names(by_team.order_by(User.score.desc()).all()) == ["dan", "bob", "ann", "cid"]


@pytest.mark.usefixtures("users")
def test_limit_and_offset_page_through_the_rows(session: Session[Engine]) -> None:
    ordered = session.query(User).order_by(User.name)

    assert _names(ordered.limit(2).all()) == ["ann", "bob"]
    assert _names(ordered.limit(2).offset(2).all()) == ["cid", "dan"]
    assert _names(ordered.offset(3).all()) == ["dan"]
    assert _names(ordered.limit(2).limit(None).all()) == ["ann", "bob", "cid", "dan"]


@pytest.mark.usefixtures("users")
def test_a_query_is_immutable(session: Session[Engine]) -> None:
    base = session.query(User)
    reds = base.filter_by(team="red")
    base.order_by(User.name).limit(1).offset(1)

    assert len(base.all()) == 4
    assert sorted(_names(reds.all())) == ["ann", "cid"]


class _Tagged(ExecutableOption):
    """A statement option that Core carries along and ignores."""


@pytest.mark.usefixtures("users")
def test_options_reach_the_statement_and_the_query_still_runs(session: Session[Engine]) -> None:
    first, second = _Tagged(), _Tagged()

    query = session.query(User).options(first).options(second)

    assert query.statement._with_options == (first, second)  # what Select.options() keeps
    assert len(query.all()) == 4


# -- first, one, one_or_none -----------------------------------------------------------------


@pytest.mark.usefixtures("users")
def test_first_sends_limit_1_and_gives_the_first_object(
    session: Session[Engine], capture: SQLCapture
) -> None:
    first = session.query(User).order_by(User.score.desc()).first()

    assert first is not None
    assert first.name == "dan"
    (sql,) = sql_for(capture, "SELECT", User)
    assert "LIMIT" in sql.upper()


@pytest.mark.usefixtures("users")
def test_first_is_none_without_rows_and_keeps_a_limit_of_0(session: Session[Engine]) -> None:
    assert session.query(User).filter_by(name="zed").first() is None
    assert session.query(User).limit(0).first() is None
    second = session.query(User).order_by(User.name).offset(1).first()
    assert second is not None
    assert second.name == "bob"


@pytest.mark.usefixtures("users")
def test_one_and_one_or_none_give_the_one_object(session: Session[Engine]) -> None:
    bob = session.query(User).filter_by(name="bob").one()

    assert bob.team == "blue"
    assert session.query(User).filter(User.score == 1).one_or_none() is bob
    assert session.query(User).filter_by(name="zed").one_or_none() is None


@pytest.mark.usefixtures("users")
def test_one_without_a_row_raises_no_result_found(session: Session[Engine]) -> None:
    with pytest.raises(NoResultFound) as caught:
        session.query(User).filter_by(name="zed").one()

    message = str(caught.value)
    assert message.startswith("No row was found when one was required")
    assert "User" in message
    assert "one_or_none()" in message


@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("method", ["one", "one_or_none"])
def test_several_rows_raise_multiple_results_found(session: Session[Engine], method: str) -> None:
    query = session.query(User).filter_by(team="red")

    with pytest.raises(MultipleResultsFound) as caught:
        getattr(query, method)()

    message = str(caught.value)
    assert message.startswith("Multiple rows were found when exactly one was required")
    assert "User" in message
    assert "first()" in message


# -- count -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("users")
def test_count_counts_the_query_as_a_subquery(
    session: Session[Engine], capture: SQLCapture
) -> None:
    assert session.query(User).count() == 4
    assert session.query(User).filter_by(team="red").count() == 2
    assert session.query(User).order_by(User.name).limit(3).count() == 3
    assert session.query(User).order_by(User.name).offset(3).count() == 1

    selects = sql_for(capture, "SELECT", User)
    assert len(selects) == 4
    assert all("count(*)" in sql.lower() and sql.count("SELECT") == 2 for sql in selects)


def test_count_autoflushes_first(session: Session[Engine]) -> None:
    session.add_all([User(name="eve"), User(name="fay")])

    assert session.query(User).count() == 2


# -- get -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("users")
def test_get_looks_in_the_identity_map_then_the_database(
    session: Session[Engine], capture: SQLCapture
) -> None:
    ann = session.query(User).filter_by(name="ann").one()
    capture.clear()

    assert session.query(User).get(ann.id) is ann
    assert capture.statements == []
    bob_id = session.scalars(select(User.id).where(User.name == "bob")).one()
    bob = session.query(User).order_by(User.name).get(bob_id)
    assert bob is not None
    assert bob.name == "bob"
    assert session.query(User).get(bob_id + 100) is None


@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("refine", ["filter", "limit", "offset"])
def test_get_refuses_a_query_with_criteria(session: Session[Engine], refine: str) -> None:
    query = session.query(User)
    query = {
        "filter": query.filter_by(team="red"),
        "limit": query.limit(1),
        "offset": query.offset(1),
    }[refine]

    with pytest.raises(InvalidRequestError, match=r"existing criterion.*session\.query\(User\)"):
        query.get(1)
