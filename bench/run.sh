#!/usr/bin/env bash
# Peer benchmark (typed_session vs SQLAlchemy ORM, Core, raw driver) and the attr_read
# micro-benchmark. Run from the repository root:
#
#     bench/run.sh                      # N=20000, REPS=5, sqlite-memory and postgresql
#     N=2000 REPS=3 bench/run.sh        # quick check
#
# Environment: N, REPS, SHARED (the shared folder, default ../shared), PG_URL, PYTHON,
# BACKENDS (default "sqlite-memory postgresql"), ATTR_NUMBER (timeit ops, default 2000000).
# Results: bench/results/peers-<backend>.{md,json}, bench/results/attr_read.{md,json}.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-20000}
REPS=${REPS:-5}
SHARED=${SHARED:-../shared}
PYTHON=${PYTHON:-.venv/bin/python}
PG_URL=${PG_URL:-postgresql+psycopg://postgres@127.0.0.1/test}
BACKENDS=${BACKENDS:-sqlite-memory postgresql}
ATTR_NUMBER=${ATTR_NUMBER:-2000000}
OUT=bench/results
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}

for backend in $BACKENDS; do
    echo "== peers.py on $backend, N=$N, REPS=$REPS" >&2
    "$PYTHON" "$SHARED/bench/peers.py" \
        --n "$N" --reps "$REPS" \
        --backends "$backend" \
        --pg-url "$PG_URL" \
        --impls orm core raw core_ret raw_ret \
        --plugin bench.peers_plugin:TypedSessionImpl \
        --json "$OUT/peers-$backend.json" \
        --md "$OUT/peers-$backend.md" >/dev/null
    cat "$OUT/peers-$backend.md"
done

echo "== attr_read.py" >&2
"$PYTHON" bench/attr_read.py --number "$ATTR_NUMBER" \
    --json "$OUT/attr_read.json" --md "$OUT/attr_read.md" >/dev/null
cat "$OUT/attr_read.md"
