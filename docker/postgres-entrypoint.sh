#!/bin/sh
# Entry point of docker/postgres.Dockerfile: on the first start (empty $PGDATA) make the cluster
# with POSTGRES_USER as its superuser (password POSTGRES_PASSWORD, scram-sha-256 over TCP from
# anywhere, like the official image) and the database POSTGRES_DB; then run the server in the
# foreground (exec: it gets the stop signal itself). Extra arguments go to `postgres`.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: set POSTGRES_PASSWORD (the superuser's password)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # single-user mode: no server, no network; the session user is the bootstrap superuser
    echo "CREATE DATABASE \"$db\" OWNER \"$user\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres-entrypoint: made the cluster in $PGDATA (superuser $user, database $db)"
fi
exec postgres -D "$PGDATA" "$@"
