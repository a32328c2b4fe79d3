#!/bin/sh
# A careless agent: prints the values of its secrets TOKEN and FILE_TOKEN everywhere it can, on
# stderr, in log, progress and stats messages, in its result, and (with CONNECTOR_HOST_FIELD_FAIL=1)
# in a failure's error, and (with CONNECTOR_HOST_FIELD_VERBATIM=1) in its checkpoint and a child's
# metadata, which the host must refuse rather than store. It copies its payload file to CONNECTOR_HOST_FIELD_COPIES for inspection.
set -eu
cp "$CONNECTOR_HOST_PAYLOAD" "$CONNECTOR_HOST_FIELD_COPIES/$CONNECTOR_HOST_TASK_EXECUTION_ID.json"
echo "stderr: token=$TOKEN file=$FILE_TOKEN" >&2
echo "{\"type\":\"log\",\"level\":\"warning\",\"message\":\"log: $TOKEN $FILE_TOKEN\"}"
echo "{\"type\":\"progress\",\"message\":\"progress $TOKEN\",\"done\":1,\"total\":2}"
echo "{\"type\":\"stats\",\"records\":3,\"schema\":\"schema-$FILE_TOKEN\"}"
if [ "${CONNECTOR_HOST_FIELD_VERBATIM:-0}" = 1 ]; then
    echo "{\"type\":\"child\",\"key\":\"page-1\",\"metadata\":{\"auth\":\"$FILE_TOKEN\"}}"
    echo "{\"type\":\"checkpoint\",\"metadata\":{\"cursor\":\"$TOKEN\"}}"
fi
if [ "${CONNECTOR_HOST_FIELD_FAIL:-0}" = 1 ]; then
    echo "{\"type\":\"result\",\"status\":\"failure\",\"failureReason\":\"NON_RETRYABLE_ERROR\",\"message\":\"denied for $TOKEN / $FILE_TOKEN\"}"
    exit 1
fi
echo "{\"type\":\"result\",\"status\":\"success\",\"result\":{\"token\":\"$TOKEN\",\"file\":\"$FILE_TOKEN\"}}"
