#!/bin/sh
# Records the modes of its payload file and directories in CONNECTOR_HOST_FIELD_PROBE, then behaves
# as CONNECTOR_HOST_FIELD_MODE says: succeed, crash (SIGSEGV) or hang (until CONNECTOR_HOST_FIELD_RELEASE exists).
set -eu
dir=$(dirname "$CONNECTOR_HOST_PAYLOAD")
echo "$CONNECTOR_HOST_PAYLOAD $(stat -c %a "$CONNECTOR_HOST_PAYLOAD") $(stat -c %a "$dir") $(stat -c %a "$(dirname "$dir")")" >> "$CONNECTOR_HOST_FIELD_PROBE"
case "$CONNECTOR_HOST_FIELD_MODE" in
    crash) kill -SEGV $$ ;;
    hang) while [ ! -e "$CONNECTOR_HOST_FIELD_RELEASE" ]; do sleep 0.1; done ;;
esac
echo '{"type":"result","status":"success"}'
