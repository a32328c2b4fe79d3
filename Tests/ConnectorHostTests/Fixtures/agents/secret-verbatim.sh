#!/bin/sh
# Puts its secret API_TOKEN in a log, stats and progress message (masked by the host) and, as WHERE
# says, in its checkpoint or a child's metadata (which the host must refuse, not store).
echo "{\"type\":\"log\",\"level\":\"info\",\"message\":\"token $API_TOKEN\"}"
echo "{\"type\":\"stats\",\"records\":1,\"schema\":\"v-$API_TOKEN\"}"
case "$WHERE" in
    checkpoint) echo "{\"type\":\"checkpoint\",\"metadata\":{\"cursor\":\"$API_TOKEN\"}}" ;;
    child) echo "{\"type\":\"child\",\"key\":\"page\",\"metadata\":{\"auth\":\"$API_TOKEN\"}}" ;;
esac
echo "{\"type\":\"progress\",\"message\":\"at $API_TOKEN\"}"
echo "{\"type\":\"result\",\"status\":\"success\",\"result\":{\"t\":\"$API_TOKEN\"}}"
