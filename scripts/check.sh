#!/usr/bin/env bash
# Full project check: services (CI only), install, lint, format, type checks, tests.
#
# Usage:
#   scripts/check.sh [PYTEST_ARGS...]   run every step; extra args go to pytest
#   scripts/check.sh --services-only    only make sure PostgreSQL and MariaDB are up
#                                       (and PostgreSQL allows two-phase commit, and has
#                                       a streaming replica on port 5433 for the read-replica
#                                       tests: scripts/replica.sh), whether or not CI=true
set -euo pipefail

cd "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")"

PG_HOST=127.0.0.1
PG_PORT=5432
MYSQL_HOST=127.0.0.1
WAIT_SECONDS=30

pg_version() {
    # The Debian cluster version directory, e.g. "15" (newest if several).
    ls /etc/postgresql | sort -V | tail -n 1
}

pg_ready() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
}

pg_wait() {
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        if pg_ready; then
            return 0
        fi
        sleep 1
    done
    pg_ready
}

pg_psql() {
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d test -v ON_ERROR_STOP=1 "$@"
}

mariadb_admin() {
    if command -v mariadb-admin >/dev/null 2>&1; then
        mariadb-admin "$@"
    else
        mysqladmin "$@"
    fi
}

mariadb_client() {
    if command -v mariadb >/dev/null 2>&1; then
        mariadb "$@"
    else
        mysql "$@"
    fi
}

mariadb_ready() {
    mariadb_admin -h "$MYSQL_HOST" -u root ping >/dev/null 2>&1
}

mariadb_wait() {
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        if mariadb_ready; then
            return 0
        fi
        sleep 1
    done
    mariadb_ready
}

ensure_postgresql() {
    local version max_prepared
    if ! pg_ready; then
        echo "PostgreSQL not ready; starting the cluster"
        version="$(pg_version)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        if ! pg_wait; then
            return 1
        fi
    fi

    # Note: set -e is off inside a function called from an `if`, hence the `|| return 1`s.
    max_prepared="$(pg_psql -tAc "show max_prepared_transactions")" || return 1
    if [ "$max_prepared" = "0" ]; then
        echo "PostgreSQL max_prepared_transactions = 0; setting it to 20 and restarting"
        pg_psql -qc "ALTER SYSTEM SET max_prepared_transactions = 20" || return 1
        version="$(pg_version)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main restart || return 1
        if ! pg_wait; then
            return 1
        fi
        max_prepared="$(pg_psql -tAc "show max_prepared_transactions")" || return 1
        if ! [ "$max_prepared" -gt 0 ] 2>/dev/null; then
            echo "ERROR: PostgreSQL max_prepared_transactions is still '$max_prepared'" \
                "after ALTER SYSTEM and restart; two-phase commit tests cannot run" >&2
            exit 1
        fi
    fi
    echo "PostgreSQL ready at $PG_HOST:$PG_PORT (max_prepared_transactions = $max_prepared)"
}

ensure_mariadb() {
    if ! mariadb_ready; then
        echo "MariaDB not ready; starting mariadbd"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
        if ! mariadb_wait; then
            return 1
        fi
    fi
    mariadb_client -h "$MYSQL_HOST" -u root -e "CREATE DATABASE IF NOT EXISTS test" || return 1
    echo "MariaDB ready at $MYSQL_HOST:3306 (database test exists)"
}

ensure_services() {
    local failed=0
    if ! ensure_postgresql; then
        echo "ERROR: PostgreSQL is unreachable at $PG_HOST:$PG_PORT" >&2
        failed=1
    elif ! bash scripts/replica.sh; then
        echo "ERROR: the PostgreSQL read replica on port 5433 could not be set up" >&2
        failed=1
    fi
    if ! ensure_mariadb; then
        echo "ERROR: MariaDB is unreachable at $MYSQL_HOST:3306" >&2
        failed=1
    fi
    if [ "$failed" -ne 0 ]; then
        exit 1
    fi
}

if [ "${1:-}" = "--services-only" ]; then
    echo "== services"
    ensure_services
    exit 0
fi

echo "== services"
if [ "${CI:-}" = "true" ]; then
    ensure_services
else
    echo "CI is not true: not managing services (tests skip unreachable backends)"
fi

echo "== install"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

echo "== ruff check"
.venv/bin/ruff check .

echo "== ruff format --check"
.venv/bin/ruff format --check .

echo "== mypy"
.venv/bin/python -m mypy

echo "== basedpyright (tests/typing)"
.venv/bin/basedpyright

echo "== basedpyright --verifytypes typed_session (must be 100%)"
# PYTHONPATH: pyright cannot follow the editable install's import hook; PATH: the venv's
# python, so that SQLAlchemy and pydantic resolve. --ignoreexternal: what counts is our
# public surface, not the completeness of SQLAlchemy's or pydantic's own annotations.
PATH="$PWD/.venv/bin:$PATH" PYTHONPATH="$PWD" \
    .venv/bin/basedpyright --verifytypes typed_session --ignoreexternal

echo "== pytest"
export TYPED_SESSION_PG_URL="${TYPED_SESSION_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
export TYPED_SESSION_MYSQL_URL="${TYPED_SESSION_MYSQL_URL:-mysql+pymysql://root@127.0.0.1:3306/test}"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "ERROR: pytest collected no tests (exit code 5)" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "ERROR: pytest failed (exit code $status)" >&2
    exit "$status"
fi

echo "== all checks passed"
