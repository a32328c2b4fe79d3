#!/bin/sh
# Leaves a grandchild that keeps stdout and stderr open and sleeps forever, then exits.
sleep 1000 &
echo '{"status": "success"}'
exit 0
