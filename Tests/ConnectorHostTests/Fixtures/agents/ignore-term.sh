#!/bin/sh
# Ignores SIGTERM: only SIGKILL stops it.
trap '' TERM
echo "ignoring SIGTERM" >&2
while :; do sleep 1; done
