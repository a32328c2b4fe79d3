#!/bin/sh
# Exits with $CODE and says so on stderr.
echo "exiting with $CODE" >&2
exit "$CODE"
