#!/bin/sh
# The full JSON Lines vocabulary, with a final result.
echo '{"type": "log", "level": "info", "message": "starting"}'
echo '{"type": "progress", "message": "half", "done": 1, "total": 2}'
echo '{"type": "stats", "records": 10, "bytes": 100, "schema": "v1"}'
echo '{"type": "stats", "records": 5}'
echo '{"type": "checkpoint", "metadata": {"cursor": 42}}'
echo '{"type": "child", "key": "folder:a", "metadata": {"path": "a"}}'
echo ''
echo '{"type": "result", "status": "failure", "failureReason": "RETRYABLE_ERROR"}'
echo '{"type": "result", "status": "success", "result": {"done": true}}'
