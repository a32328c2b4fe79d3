#!/bin/sh
# Never finishes on its own.
echo "hanging" >&2
exec sleep 1000
