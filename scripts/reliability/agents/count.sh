#!/bin/sh
# Appends "<connection> <trigger>" to CONNECTOR_HOST_FIELD_OUT when it starts and "done" lines when it
# ends, after sleeping CONNECTOR_HOST_FIELD_WORK seconds: the race cases count executions with it.
set -eu
echo "start $CONNECTOR_HOST_CONNECTION_ID $CONNECTOR_HOST_TRIGGER" >> "$CONNECTOR_HOST_FIELD_OUT"
sleep "${CONNECTOR_HOST_FIELD_WORK:-0}"
echo "done $CONNECTOR_HOST_CONNECTION_ID $CONNECTOR_HOST_TRIGGER" >> "$CONNECTOR_HOST_FIELD_OUT"
echo '{"type":"result","status":"success"}'
