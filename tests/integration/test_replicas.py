"""Read replicas (issue 16, item 5): a ReplicaSession on a real PostgreSQL hot standby.

The replica is a second PostgreSQL cluster on this machine (port 5433), a streaming
standby of the one on 5432, made by ``scripts/replica.sh`` (run here when it is missing
and we may, and by ``scripts/check.sh`` under ``CI=true``). Where it cannot be had, the
tests are skipped with the reason; under ``CI=true`` they fail instead.

To prove where a read went, the replica's replay is paused (``pg_wal_replay_pause()``):
rows committed on the primary after that are visible there only.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, String, create_engine, insert, select, text, update

from tests.conftest import SQLCapture, reachable_server_url
from tests.integration.helpers import sql_for, table_of
from typed_session import Mapped, Registry, ReplicaSession, column, entity

reg = Registry()


@entity(reg, table="rr_items")
class Item:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str] = column(String(50))


DEFAULT_REPLICA_URL = "postgresql+psycopg://postgres@127.0.0.1:5433/test"
SETUP_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "replica.sh"


def _probe_replica(url: str) -> str | None:
    """None if ``url`` reaches a PostgreSQL standby, else why not."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT pg_is_in_recovery()")).scalar():
                return f"the server at {url} is not a replica (pg_is_in_recovery() is false)"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def _set_up_replica() -> str:
    """Run scripts/replica.sh where it can run; return what happened."""
    if os.geteuid() != 0 or shutil.which("pg_createcluster") is None:
        return "scripts/replica.sh needs root and postgresql-common's pg_createcluster"
    done = subprocess.run(
        ["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    return f"scripts/replica.sh exited {done.returncode}: {done.stderr.strip()[-500:]}"


@pytest.fixture(scope="module")
def replica_url() -> str:
    """The URL of the replica, set up if missing; skipped (failed under CI=true) if none."""
    reachable_server_url("postgresql")  # no primary, no replica: skipped with that reason
    url = os.environ.get("TYPED_SESSION_PG_REPLICA_URL", DEFAULT_REPLICA_URL)
    err = _probe_replica(url)
    if err is not None:
        setup = _set_up_replica()
        err = _probe_replica(url)
        if err is not None:
            err = f"{err}; {setup}"
    if err is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL read replica, and CI=true requires one: {err}")
        pytest.skip(f"no PostgreSQL read replica: {err}")
    return url


@dataclass
class Cluster:
    primary: Engine
    replica: Engine
    on_primary: SQLCapture
    on_replica: SQLCapture

    def caught_up(self, timeout: float = 20.0) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        with self.primary.connect() as conn:
            lsn = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.replica.connect() as conn:
                done = conn.execute(
                    text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), :lsn) >= 0"),
                    {"lsn": lsn},
                ).scalar()
            if done:
                return
            time.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {lsn} in {timeout} s")

    def pause_replay(self) -> None:
        with self.replica.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()"))

    def resume_replay(self) -> None:
        with self.replica.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))

    def commit_on_primary(self, *names: str, first_id: int) -> None:
        rows = [{"id": first_id + i, "name": n} for i, n in enumerate(names)]
        with self.primary.begin() as conn:
            conn.execute(insert(table_of(Item)), rows)

    def selects(self) -> tuple[int, int]:
        """SELECTs of the items sent to (primary, replica) since the last clear()."""
        return len(sql_for(self.on_primary, "SELECT", Item)), len(
            sql_for(self.on_replica, "SELECT", Item)
        )

    def clear(self) -> None:
        self.on_primary.clear()
        self.on_replica.clear()


@pytest.fixture
def cluster(replica_url: str) -> Iterator[Cluster]:
    """Fresh tables on the primary, replayed on the replica; replay resumed afterwards."""
    primary = create_engine(reachable_server_url("postgresql"))
    replica = create_engine(replica_url)
    reg.drop_all(primary)
    reg.create_all(primary)
    found = Cluster(primary, replica, SQLCapture(primary), SQLCapture(replica))
    found.commit_on_primary("old", first_id=1)
    found.caught_up()
    found.on_primary.attach()
    found.on_replica.attach()
    try:
        yield found
    finally:
        found.on_primary.detach()
        found.on_replica.detach()
        found.resume_replay()
        reg.drop_all(primary)
        primary.dispose()
        replica.dispose()


def test_reads_outside_a_writing_transaction_go_to_the_replica(cluster: Cluster) -> None:
    cluster.pause_replay()
    cluster.commit_on_primary("new", first_id=2)  # on the primary only, for now
    with ReplicaSession(cluster.primary, [cluster.replica]) as session:
        assert session.scalars(select(Item.name)).all() == ["old"]
        assert session.get(Item, 2) is None  # the replica has not replayed it
        old = session.get(Item, 1)
        assert old is not None
        session.expire(old)
        assert old.name == "old"  # the expired attribute loads from the replica too
        assert not session.writing()
    assert cluster.selects() == (0, 4)


def test_a_transaction_reads_its_writes_from_the_primary(cluster: Cluster) -> None:
    cluster.pause_replay()
    with ReplicaSession(cluster.primary, [cluster.replica]) as session:
        mine = Item(id=5, name="mine")
        session.add(mine)
        session.flush()  # the INSERT goes to the primary: the transaction is writing
        assert session.writing()
        cluster.clear()
        assert sorted(session.scalars(select(Item.name))) == ["mine", "old"]
        assert session.get(Item, 5) is mine  # the identity map
        assert cluster.selects() == (1, 0)
        session.commit()
        assert not session.writing()
        # a new transaction reads from the replica again, which has not replayed the commit
        assert session.scalars(select(Item.name)).all() == ["old"]
        assert cluster.selects() == (1, 1)
        cluster.resume_replay()
        cluster.caught_up()
        session.rollback()  # end the read-only transaction: a new snapshot
        assert sorted(session.scalars(select(Item.name))) == ["mine", "old"]


def test_locking_reads_and_dml_go_to_the_primary(cluster: Cluster) -> None:
    with ReplicaSession(cluster.primary, [cluster.replica]) as session:
        # the replica would refuse: cannot execute SELECT FOR UPDATE in a read-only transaction
        locked = session.get(Item, 1, with_for_update=True)
        assert locked is not None
        assert session.writing()
        assert cluster.selects() == (1, 0)
        session.rollback()
        rows = session.scalars(select(Item).with_for_update()).all()
        assert [r.name for r in rows] == ["old"]
        session.rollback()
        session.execute(update(table_of(Item)).values(name="changed"))
        assert session.writing()
        assert session.scalars(select(Item.name)).all() == ["changed"]  # read-your-writes
        session.commit()
        assert cluster.selects() == (3, 0)
    cluster.caught_up()
    with cluster.replica.connect() as conn:
        assert conn.execute(select(Item.name)).scalars().all() == ["changed"]
