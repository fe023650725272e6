#!/usr/bin/env bash
# Run the shop demo. Usage: scripts/demo.sh [DATABASE_URL]  (SQLite by default)
set -euo pipefail

cd "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q -e .
.venv/bin/python examples/shop.py "$@"
