#!/bin/sh
# Leaves descendants outside its process group: a setsid'd sleeper and a double-forked one
# whose parent exits at once, both holding stdout. Their pids go to $PIDS_FILE when set, so a
# test can check that exactly these were killed and reaped.
: "${PIDS_FILE:=/dev/null}"
export PIDS_FILE
setsid sleep 1000 &
echo $! >> "$PIDS_FILE"
( ( sleep 1000 & echo $! >> "$PIDS_FILE" ) & )
sh -c 'setsid sh -c "sleep 1000 & echo \$! >> \"\$PIDS_FILE\"; wait" & echo $! >> "$PIDS_FILE"'
echo '{"status": "success"}'
