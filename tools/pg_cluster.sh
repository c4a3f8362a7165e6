#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the centre's journal on PostgreSQL: made, started, restarted,
# killed and removed by the tests themselves, on a free loopback port, in a directory of their choosing.
#
#   tools/pg_cluster.sh start DIR    makes a new cluster in DIR (which must not exist or be empty), starts it,
#                                    creates the database devicekit owned by the user devicekit, waits until it
#                                    accepts connections and prints, on stdout and nothing else there:
#                                        PGHOST=127.0.0.1
#                                        PGPORT=<port>
#                                        PGUSER=devicekit
#                                        PGPASSWORD=<random password, [A-Za-z0-9] only>
#                                        PGDATABASE=devicekit
#                                        PGDATA=<DIR>/data
#   tools/pg_cluster.sh stop DIR     stops the server (fast, then immediate after 20 s) and removes DIR; a
#                                    cluster that is not running (killed, or never started) is removed all the same.
#   tools/pg_cluster.sh restart DIR  stops the server if it runs and starts it again on the same data and port
#                                    (DIR/port), waiting until it accepts connections ("PostgreSQL restarted").
#   tools/pg_cluster.sh kill DIR     SIGKILLs the postmaster (DIR/data/postmaster.pid), then whatever of its
#                                    processes outlive it, without any cleanup ("PostgreSQL unreachable");
#                                    `restart` brings it back (crash recovery), `stop` removes it.
#
# Only `start` writes to stdout; diagnostics go to stderr. Exit status 0 on success, 1 with a one-line reason.
# Password authentication (SCRAM) over TCP on 127.0.0.1; over the Unix socket in DIR (mode 700), trust.
# The server binaries: `pg_config --bindir` when it has initdb, else the newest /usr/lib/postgresql/*/bin
# (Debian's package postgresql; `make pg-deps` installs it). PostgreSQL refuses to run as root: as root, the
# server runs as the postgres system user (made by Debian's package), DIR chowned to it.
# Files in DIR: data/ (PGDATA), server.log, initdb.log, port, and the socket .s.PGSQL.<port>.
set -euo pipefail

# Close every descriptor but 0-2 that the caller let us inherit: the server lives on after this script, and a
# socket or terminal of the caller's (a test process's listening ports, pseudo-terminals) held open by it would
# stay bound, or never hang up, after the caller closed its own copy.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  case $fd in ''|*[!0-9]*) continue ;; esac
  # 255: bash's own descriptor of this script.
  [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2>/dev/null || true
done

me=pg_cluster.sh
die() { echo "$me: $*" >&2; exit 1; }
note() { echo "$me: $*" >&2; }

usage() { die "usage: $0 start|stop|restart|kill DIR"; }
[ $# -eq 2 ] || usage
cmd=$1
[ -n "$2" ] || usage
# Absolute and without symbolic links: the server's processes are recognised by their working directory, DIR/data.
DIR=$(realpath -m -- "$2")
DATA=$DIR/data
MARK=$DIR/.pg_cluster
[ "$DIR" != / ] || die "DIR must not be /"
# The path goes into the server's options (-o is read by a shell) and the socket's path is at most 107 bytes.
[[ $DIR =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR must contain only letters, digits and . _ / + - (got '$DIR')"
[ ${#DIR} -le 92 ] || die "DIR is too long for the server's Unix socket in it ($DIR: ${#DIR} characters, at most 92)"

# What the caller's environment says of another server must not reach ours.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^PG' || true)
cd /

# The server binaries.
find_bindir() {
  local d
  if d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
    echo "$d"; return
  fi
  d=$(ls -dv /usr/lib/postgresql/*/bin 2>/dev/null | while read -r b; do
        [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/postgres" ] && echo "$b"; done | tail -n1 || true)
  [ -n "$d" ] || die "no PostgreSQL server (initdb, pg_ctl, postgres) found: install Debian's package postgresql (apt-get install postgresql, or make pg-deps)"
  echo "$d"
}

# As root, the server and its tools run as the postgres system user.
if [ "$(id -u)" = 0 ]; then
  getent passwd postgres >/dev/null \
    || die "running as root, but there is no postgres system user to run the server as (PostgreSQL refuses root): install Debian's package postgresql, which makes it"
  if command -v runuser >/dev/null; then
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
  fi
  owner=postgres
else
  as_pg() { "$@"; }
  owner=
fi

# The process with this pid exists, is not a zombie, and is one of this cluster's (working directory DATA).
ours_alive() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "/proc/$pid/cwd" -ef "$DATA" ] || return 1
  read -r stat < "/proc/$pid/stat" 2>/dev/null || return 1
  stat=${stat##*) }
  case ${stat%% *} in Z|X|x) return 1 ;; esac
}
# This cluster's live processes (the postmaster and its children all work in DATA).
cluster_pids() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    ours_alive "$p" && echo "$p"
  done
  return 0
}
postmaster_pid() { head -n1 "$DATA/postmaster.pid" 2>/dev/null || true; }
postmaster_alive() { ours_alive "$(postmaster_pid)"; }

# Waits up to $1 seconds for all of the cluster's processes to be gone; then SIGKILLs what is left.
reap_cluster() {
  local i pids
  for ((i = 0; i < $1 * 10; i++)); do
    pids=$(cluster_pids)
    [ -z "$pids" ] && return 0
    sleep 0.1
  done
  note "processes of $DATA still there after $1 s ($(echo $pids)): SIGKILL"
  kill -KILL $pids 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    [ -z "$(cluster_pids)" ] && return 0
    sleep 0.1
  done
  die "processes of $DATA survive SIGKILL: $(echo $(cluster_pids))"
}

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    # No python3: a random port nothing answers on (the start is retried should it be taken meanwhile).
    local p i
    for ((i = 0; i < 50; i++)); do
      p=$(( 20000 + RANDOM % 30000 ))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    die "found no free port on 127.0.0.1"
  fi
}

# Starts the server on port $1; returns 2 when the port was taken, 1 on any other failure (log on stderr).
start_server() {
  local port=$1 before
  before=0
  [ ! -f "$DIR/server.log" ] || before=$(wc -l < "$DIR/server.log")
  if as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$DIR/server.log" -w -t 60 -s \
       -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$DIR -c fsync=on -c max_connections=200 -c shared_buffers=64MB" >&2
  then
    local i
    for ((i = 0; i < 300; i++)); do
      "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U devicekit -d devicekit && return 0
      sleep 0.1
    done
    note "the server started but does not accept connections on 127.0.0.1:$port after 30 s"
    return 1
  fi
  if tail -n +"$((before + 1))" "$DIR/server.log" 2>/dev/null | grep -q 'Address already in use'; then
    return 2
  fi
  note "the server did not start; the end of $DIR/server.log:"
  tail -n 20 "$DIR/server.log" >&2 2>/dev/null || true
  return 1
}

# Stops the server if it runs: fast, then immediate after 20 s, then SIGKILL; waits until all its processes are gone.
stop_server() {
  if postmaster_alive; then
    if ! as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t 20 -s >&2; then
      note "the server did not stop in 20 s (fast): stopping it immediately"
      as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w -t 20 -s >&2 || true
      postmaster_alive && kill -KILL "$(postmaster_pid)" 2>/dev/null || true
    fi
  fi
  reap_cluster 10
}

check_cluster_dir() {
  [ -d "$DIR" ] || die "$DIR does not exist"
  [ -f "$MARK" ] || die "$DIR was not made by $me start"
  [ -f "$DATA/PG_VERSION" ] && [ -f "$DIR/port" ] || die "$DIR holds no cluster (did start fail?)"
}

case $cmd in
start)
  BINDIR=$(find_bindir)
  if [ -e "$DIR" ]; then
    [ -d "$DIR" ] || die "$DIR exists and is not a directory"
    [ -z "$(ls -A "$DIR")" ] || die "$DIR exists and is not empty"
  fi
  mkdir -p "$DIR"
  touch "$MARK"
  chmod 700 "$DIR"
  if [ -n "$owner" ]; then
    chown "$owner:" "$DIR" "$MARK"
    as_pg test -w "$DIR" -a -x "$DIR" \
      || die "the postgres user cannot reach $DIR (a directory above it is not searchable by it): choose a DIR under /tmp"
  fi

  password=$(head -c 256 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | cut -c1-24)
  [ ${#password} -ge 16 ] || password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

  # C.UTF-8 when the C library has it (Debian's libc does), else no locale at all, still UTF8.
  if locale -a 2>/dev/null | grep -Eqix 'c\.utf-?8'; then
    locale_opt=--locale=C.UTF-8
  else
    note "no C.UTF-8 locale here: initdb --no-locale (encoding still UTF8)"
    locale_opt=--no-locale
  fi
  pwfile=$DIR/pwfile
  (umask 077; printf '%s\n' "$password" > "$pwfile")
  [ -z "$owner" ] || chown "$owner:" "$pwfile"
  if ! as_pg "$BINDIR/initdb" -D "$DATA" --auth-local=trust --auth-host=scram-sha-256 --username=devicekit \
         --pwfile="$pwfile" --encoding=UTF8 "$locale_opt" --no-sync --no-instructions > "$DIR/initdb.log" 2>&1; then
    rm -f "$pwfile"
    note "initdb failed; $DIR/initdb.log:"
    cat "$DIR/initdb.log" >&2
    exit 1
  fi
  rm -f "$pwfile"
  [ -z "$owner" ] || chown "$owner:" "$DIR/initdb.log"

  # The server from here on: should anything below fail, it must not outlive this script.
  trap 'st=$?; if [ $st -ne 0 ]; then stop_server 2>/dev/null || true; note "start failed; DIR left for inspection: $DIR (remove it with: $0 stop $DIR)"; fi' EXIT
  for attempt in 1 2; do
    port=$(free_port)
    echo "$port" > "$DIR/port"
    rc=0; start_server "$port" || rc=$?
    [ $rc -eq 0 ] && break
    [ $rc -eq 2 ] && [ $attempt -eq 1 ] || { [ $rc -ne 2 ] || note "port $port taken again"; exit 1; }
    note "port $port was taken meanwhile: another one"
  done
  [ -z "$owner" ] || chown "$owner:" "$DIR/port"
  as_pg "$BINDIR/createdb" -h "$DIR" -p "$port" -U devicekit -O devicekit devicekit >&2
  trap - EXIT

  printf '%s\n' "PGHOST=127.0.0.1" "PGPORT=$port" "PGUSER=devicekit" "PGPASSWORD=$password" \
    "PGDATABASE=devicekit" "PGDATA=$DATA"
  ;;

stop)
  [ -e "$DIR" ] || { note "$DIR does not exist: nothing to stop"; exit 0; }
  [ -d "$DIR" ] || die "$DIR is not a directory"
  # Refuses to remove what it did not make (or an empty directory).
  [ -f "$MARK" ] || [ -z "$(ls -A "$DIR")" ] || die "$DIR was not made by $me start: not removing it"
  if [ -f "$DATA/PG_VERSION" ]; then
    BINDIR=$(find_bindir)
    stop_server
  fi
  rm -rf -- "$DIR"
  ;;

restart)
  check_cluster_dir
  BINDIR=$(find_bindir)
  port=$(cat "$DIR/port")
  stop_server
  # After `kill` (or a crash) the lock files (DATA/postmaster.pid, the socket's DIR/.s.PGSQL.<port>.lock) name a
  # process that is gone, or a zombie not yet reaped (an init that reaps late or never), which the postmaster
  # would take for a running server: the cluster's processes are all gone (above), so they are stale.
  if [ -e "$DATA/postmaster.pid" ]; then
    note "removing the stale $DATA/postmaster.pid (pid $(postmaster_pid))"
    rm -f "$DATA/postmaster.pid"
  fi
  rm -f "$DIR/.s.PGSQL.$port.lock" "$DIR/.s.PGSQL.$port"
  rc=0; start_server "$port" || rc=$?
  case $rc in
    0) ;;
    2) die "port $port (DIR/port) is now taken by another process: cannot restart on it" ;;
    *) die "the server did not start again" ;;
  esac
  ;;

kill)
  check_cluster_dir
  pid=$(postmaster_pid)
  if ! ours_alive "$pid"; then
    note "the server of $DIR is not running"
  else
    kill -KILL "$pid"
  fi
  # What outlives the postmaster (backends, checkpointer, ...) would exit by itself shortly, serving its open
  # connections meanwhile: killed too, so that the server is wholly gone when this returns.
  pids=$(cluster_pids)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  reap_cluster 5
  ;;

*)
  usage
  ;;
esac
