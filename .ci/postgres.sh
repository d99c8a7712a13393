# Sourced by .ci/run: starts a throwaway PostgreSQL 15 for the store's
# tests and exports its address as THAW_TEST_POSTGRES; a trap stops it and
# removes its files when the sourcing shell exits, also after a failure.
# initdb refuses root, so the server runs as the postgres user, on a socket
# and a data folder in a temp dir it owns, listening on 127.0.0.1 only.
# fsync is off: the cluster lives for one CI run.
pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/initdb" ]; then
  # Installing postgresql-15 over an installed one would upgrade it, so
  # only when it is missing; the package's own main cluster is not wanted.
  mkdir -p /etc/postgresql-common
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends postgresql-15
fi
pg_dir=$(mktemp -d /tmp/thaw-pg.XXXXXX)
chown postgres: "$pg_dir"
pg_stop() {
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
# A later trap on EXIT replaces this one: it must call pg_stop too.
trap pg_stop EXIT
# A free port: PostgreSQL's own, unless something listens there.
pg_port=5432
while (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null; do pg_port=$((pg_port + 1)); done
pg_started=$(date +%s)
# Over TCP with a password, as a shared store is reached, so that the tests
# of a wrong password and of what messages leave out have one to use.
pg_password=thaw-ci-$RANDOM$RANDOM
echo "$pg_password" >"$pg_dir/pwfile"
chown postgres: "$pg_dir/pwfile"
# The logs go with the temp dir, so a failure prints them first.
if ! runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --pwfile="$pg_dir/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >"$pg_dir/initdb.log" 2>&1; then
  cat "$pg_dir/initdb.log" >&2
  exit 1
fi
if ! runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null; then
  cat "$pg_dir/server.log" >&2
  exit 1
fi
runuser -u postgres -- "$pg_bin/createdb" -h "$pg_dir" -p "$pg_port" thaw_test
export THAW_TEST_POSTGRES="postgres://postgres:$pg_password@127.0.0.1:$pg_port/thaw_test?sslmode=disable"
echo "PostgreSQL 15 up on port $pg_port in $(($(date +%s) - pg_started)) s"
