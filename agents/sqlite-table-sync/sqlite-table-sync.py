#!/usr/bin/env python3
"""sqlite-table-sync: extracts a table of a SQLite database into JSON Lines, incrementally.

Fields: database (the .sqlite file, opened read-only), table, cursorColumn (default "updated_at"),
keyColumn (default "id"; breaks ties between rows with the same cursor), output (default
.connector-host/output/<connection>), batchSize (rows per read, default 500), busyTimeoutSeconds
(how long to wait for a writer's lock, default 2).

The full task type exports the whole table to <table>.full.jsonl. The incremental task type exports
the rows whose (cursor, key) is past the checkpoint to <table>.changes.<from>.jsonl, named after the
position it started from so a redelivered task rewrites the same file, and stages the last row's
(cursor, key) as the next checkpoint. A missing database or table is ENTITY_NOT_FOUND; a locked
database is RETRYABLE_ERROR; a missing column is NON_RETRYABLE_ERROR (the config is wrong).
"""
import base64
import hashlib
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk", "python"))
from connector_agent import AgentError, agent  # noqa: E402


def quoted(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def plain(value):
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def open_database(path, busy_timeout):
    if not os.path.exists(path):
        raise AgentError.not_found("database %s does not exist" % path)
    try:
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=busy_timeout)
    except sqlite3.Error as error:
        raise AgentError.non_retryable("cannot open %s: %s" % (path, error))


def classify(error, database):
    """sqlite3 raises OperationalError for a lock and for a broken query alike: the text decides."""
    text = str(error)
    if "locked" in text or "busy" in text:
        return AgentError.retryable("database %s is locked by a writer (%s); will retry" % (database, text))
    if "unable to open" in text:
        return AgentError.not_found("database %s cannot be opened: %s" % (database, text))
    return AgentError.non_retryable("database %s: %s" % (database, text))


@agent
def run(payload, ctx):
    database = os.path.abspath(payload.field("database", required=True, kind=str))
    table = payload.field("table", required=True, kind=str)
    cursor_column = payload.field("cursorColumn", "updated_at", kind=str)
    key_column = payload.field("keyColumn", "id", kind=str)
    output = os.path.abspath(payload.field("output", os.path.join(".connector-host", "output", payload.connection_id), kind=str))
    batch_size = payload.field("batchSize", 500, kind=int)
    busy_timeout = payload.field("busyTimeoutSeconds", 2, kind=(int, float))

    connection = open_database(database, busy_timeout)
    try:
        try:
            columns = connection.execute("PRAGMA table_info(%s)" % quoted(table)).fetchall()
        except sqlite3.Error as error:
            raise classify(error, database)
        if not columns:
            raise AgentError.not_found("table %s does not exist in %s" % (table, database))
        names = [column[1] for column in columns]
        for role, column in (("cursorColumn", cursor_column), ("keyColumn", key_column)):
            if column not in names:
                raise AgentError.non_retryable('field "%s": table %s has no column %s (it has %s)' % (role, table, column, ", ".join(names)))
        # The columns and their declared types: a change shows up as a schema-change alert.
        schema = hashlib.sha256(",".join("%s:%s" % (c[1], c[2]) for c in columns).encode()).hexdigest()[:12]

        position = (payload.checkpoint or {}) if payload.is_incremental else {}
        where, arguments = "", []
        if "cursor" in position:
            where = "WHERE (%s, %s) > (?, ?)" % (quoted(cursor_column), quoted(key_column))
            arguments = [position["cursor"], position["key"]]
        query = "SELECT * FROM %s %s ORDER BY %s, %s" % (quoted(table), where, quoted(cursor_column), quoted(key_column))

        if payload.is_incremental:
            origin = json.dumps([position.get("cursor"), position.get("key")])
            name = "%s.changes.%s.jsonl" % (table, hashlib.sha256(origin.encode()).hexdigest()[:12])
        else:
            name = "%s.full.jsonl" % table
        os.makedirs(output, exist_ok=True)
        temporary = os.path.join(output, "." + name + ".tmp")
        rows = written = 0
        last = None
        try:
            with open(temporary, "w") as handle:
                statement = connection.execute(query, arguments)
                while True:
                    batch = statement.fetchmany(batch_size)
                    if not batch:
                        break
                    for row in batch:
                        document = {names[i]: plain(value) for i, value in enumerate(row)}
                        line = json.dumps(document, sort_keys=True) + "\n"
                        handle.write(line)
                        written += len(line)
                        last = document
                    rows += len(batch)
                    ctx.progress("%d rows of %s" % (rows, table), done=rows)
        except sqlite3.Error as error:
            os.unlink(temporary)
            raise classify(error, database)
        if rows == 0 and payload.is_incremental:
            os.unlink(temporary)  # nothing changed: no empty file
        else:
            os.replace(temporary, os.path.join(output, name))
    finally:
        connection.close()

    ctx.stats(records=rows, bytes=written, schema=schema)
    if payload.is_incremental and last is not None:
        ctx.checkpoint({"cursor": last[cursor_column], "key": last[key_column]})
    ctx.log("%s: %d row(s) from %s" % (table, rows, "the checkpoint" if position else "the start"))
    return {"table": table, "rows": rows, "file": name if rows or not payload.is_incremental else None}
