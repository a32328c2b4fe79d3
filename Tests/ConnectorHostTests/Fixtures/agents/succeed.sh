#!/bin/sh
# Succeeds with a legacy (untyped) result object.
echo '{"status": "success", "message": "synced", "items": 3}'
