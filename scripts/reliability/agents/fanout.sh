#!/bin/sh
# The root fans out CONNECTOR_HOST_FIELD_ITEMS children and stages a checkpoint naming its scan;
# each child "works" CONNECTOR_HOST_FIELD_WORK seconds, then appends "<item> <execution id>" to
# CONNECTOR_HOST_FIELD_OUT in one write (O_APPEND), so every processing of an item is counted.
set -eu
if [ "$CONNECTOR_HOST_IS_ROOT_TASK" = 1 ]; then
    echo "root $CONNECTOR_HOST_TASK_EXECUTION_ID" >> "$CONNECTOR_HOST_FIELD_OUT"
    i=0
    while [ "$i" -lt "$CONNECTOR_HOST_FIELD_ITEMS" ]; do
        echo "{\"type\":\"child\",\"key\":\"item-$i\",\"metadata\":{\"item\":$i}}"
        i=$((i + 1))
    done
    echo "{\"type\":\"checkpoint\",\"metadata\":{\"scan\":\"$CONNECTOR_HOST_SCAN_ID\"}}"
    echo '{"type":"result","status":"success"}'
    exit 0
fi
sleep "$CONNECTOR_HOST_FIELD_WORK"
echo "$CONNECTOR_HOST_METADATA_ITEM $CONNECTOR_HOST_TASK_EXECUTION_ID" >> "$CONNECTOR_HOST_FIELD_OUT"
echo '{"type":"result","status":"success"}'
