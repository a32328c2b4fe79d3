#!/bin/sh
# Reports a failure with the reason named in $REASON, as JSON Lines with a final result.
echo '{"type": "log", "level": "warning", "message": "about to fail"}'
echo "{\"type\": \"result\", \"status\": \"failure\", \"failureReason\": \"$REASON\", \"message\": \"upstream said no\", \"retryAfterSeconds\": 7}"
