#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, the benchmark and a try-out: initdb into DIR, served
# by pg_ctl on a unix socket inside DIR (no TCP port), trust authentication. Never for real data.
#
#   scripts/throwaway-postgres.sh start DIR [--durable]   prints the server's URL
#   scripts/throwaway-postgres.sh createdb DIR NAME      prints the new database's URL
#   scripts/throwaway-postgres.sh stop DIR               stops the server and removes DIR
#
# Without --durable the server skips fsync (tests); with it, it keeps fsync and only makes commits
# asynchronous (synchronous_commit=off), as SQLite's synchronous=NORMAL does (the benchmark).
# As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail

usage() { echo "usage: $0 start DIR [--durable] | createdb DIR NAME | stop DIR" >&2; exit 64; }
[ $# -ge 2 ] || usage
command=$1
dir=$2

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "error: no PostgreSQL server under /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)" >&2
    exit 69
fi
as_server() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
url() { echo "postgresql://postgres@/$1?host=$dir"; }

case $command in
start)
    settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${3:-}" = "--durable" ] && settings="-c synchronous_commit=off"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_server "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses='' -c max_connections=200 $settings" start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    url postgres
    ;;
createdb)
    [ $# -eq 3 ] || usage
    "$bin/psql" -q -X -h "$dir" -U postgres -d postgres -c "CREATE DATABASE \"$3\"" >/dev/null
    url "$3"
    ;;
stop)
    if [ -d "$dir/data" ]; then as_server "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
*) usage ;;
esac
