#!/usr/bin/env bash
# A streaming replica of the local PostgreSQL cluster, for the read-replica tests.
#
# Usage: scripts/replica.sh        (idempotent; root, on a Debian postgresql-common machine)
#
# Creates the cluster "typed_replica" on port 5433 (REPLICA_PORT) as a hot standby of
# the "main" cluster on 5432: pg_createcluster, then its data directory replaced by a
# pg_basebackup of the primary (-R: standby.signal and primary_conninfo), and started.
# The primary gets a pg_hba.conf line for replication connections from 127.0.0.1
# (trust, as its other local lines) and is reloaded, never restarted.
set -euo pipefail

PRIMARY_PORT=${PRIMARY_PORT:-5432}
PORT=${REPLICA_PORT:-5433}
NAME=typed_replica
VERSION="$(ls /etc/postgresql | sort -V | tail -n 1)"
HBA="/etc/postgresql/$VERSION/main/pg_hba.conf"
DATA="/var/lib/postgresql/$VERSION/$NAME"

if ! grep -qE '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$HBA"; then
    echo "host replication all 127.0.0.1/32 trust" >>"$HBA"
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload
fi

if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$NAME"; then
    pg_createcluster "$VERSION" "$NAME" -p "$PORT" >/dev/null
fi
if [ ! -f "$DATA/standby.signal" ]; then
    # the fresh cluster's own database is replaced by a copy of the primary's
    install -d -o postgres -g postgres -m 700 "$DATA"
    find "$DATA" -mindepth 1 -delete
    runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres \
        -D "$DATA" -R -X stream -c fast
fi
# the replica accepts the connections the primary accepts (trust from 127.0.0.1)
install -o postgres -g postgres -m 640 "$HBA" "/etc/postgresql/$VERSION/$NAME/pg_hba.conf"
if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" reload
else
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start
fi
for _ in $(seq 1 30); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        echo "replica ready at 127.0.0.1:$PORT"
        exit 0
    fi
    sleep 1
done
echo "ERROR: the replica on port $PORT did not start; see /var/log/postgresql/" >&2
exit 1
