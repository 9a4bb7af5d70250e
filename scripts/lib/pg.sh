# Private PostgreSQL clusters for the scripts: sourced, not run.
#
#   pg_start NAME PORT [--fresh] [--no-fsync]
#                                  start (and create if needed) the cluster
#                                  NAME on 127.0.0.1:PORT, export DATABASE_URL;
#                                  --fresh: recreate it; --no-fsync: throwaway
#                                  data, skip disk flushes (tests only)
#   pg_stop                        stop the cluster pg_start started
#
# The cluster lives in .data/NAME inside the project. PostgreSQL refuses to
# run as root: as root the cluster belongs to the 'postgres' system user
# (created if missing) and every server command runs through runuser.

PG_PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

pg_log() { printf 'pg: %s\n' "$*" >&2; }

pg_find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

pg_install() {
  if pg_find_bin >/dev/null; then return 0; fi
  pg_log "PostgreSQL server binaries not found; installing Debian's postgresql package"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { pg_log "not root and no sudo: install PostgreSQL (apt-get install postgresql) or set DATABASE_URL"; return 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  pg_find_bin >/dev/null || { pg_log "postgresql installed but initdb was not found"; return 1; }
}

# Run a server command as the cluster's owner.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_prepare_owner() {
  [ "$(id -u)" -eq 0 ] || return 0
  if ! id postgres >/dev/null 2>&1; then
    pg_log "creating the 'postgres' system user"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

# The folder holding the clusters: the project's .data, unless the server's
# user cannot reach it (a checkout under /root, say), then one under /var/tmp.
pg_base_dir() {
  local base="$PG_PROJECT_ROOT/.data"
  mkdir -p "$base"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$base"
    if ! runuser -u postgres -- test -w "$base"; then
      base="/var/tmp/espace-famille-$(printf '%s' "$PG_PROJECT_ROOT" | cksum | cut -d' ' -f1)"
      mkdir -p "$base"
      chown postgres: "$base"
    fi
  fi
  echo "$base"
}

pg_start() {
  local name="$1" port="$2" fresh="" nofsync=""
  shift 2
  for option in "$@"; do
    case "$option" in
      --fresh) fresh=--fresh ;;
      --no-fsync) nofsync=--no-fsync ;;
    esac
  done
  pg_install || return 1
  pg_prepare_owner
  PG_BIN="$(pg_find_bin)"
  PG_DATA="$(pg_base_dir)/$name"
  if [ "$fresh" = "--fresh" ] && [ -d "$PG_DATA" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DATA"
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DATA"
    pg_log "creating cluster $PG_DATA"
    pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$PG_DATA'"
      echo "max_connections = 300"
      echo "timezone = 'UTC'"
    } | pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
    if [ -n "$nofsync" ]; then
      # Throwaway test data: durability is not worth the disk flushes.
      echo "fsync = off" | pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
    fi
  fi
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null || {
      pg_log "the server did not start; its log:"; tail -20 "$PG_DATA/server.log" >&2; return 1; }
  fi
  PG_STARTED_DATA="$PG_DATA"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  pg_log "PostgreSQL is up on 127.0.0.1:$port ($PG_DATA)"
}

pg_stop() {
  [ -n "${PG_STARTED_DATA:-}" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_STARTED_DATA" -m fast -w stop >/dev/null 2>&1 || true
  pg_log "PostgreSQL stopped"
  PG_STARTED_DATA=""
}
