#!/bin/sh
# Appends each alert event ConnectorHost sends (JSON on stdin) as one line to $NOTIFY_FILE
# (default .connector-host/alerts.jsonl, relative to the directory of plugins.json).
set -eu
file="${NOTIFY_FILE:-.connector-host/alerts.jsonl}"
mkdir -p "$(dirname "$file")"
# The message is pretty-printed JSON; newlines inside its strings are escaped, so dropping the
# line breaks leaves one valid JSON document per line.
line=$(tr -d '\n')
printf '%s\n' "$line" >> "$file"
