#!/bin/sh
# Leaves descendants outside its process group: a setsid'd sleeper and a double-forked one
# whose parent exits at once, both holding stdout.
setsid sleep 1000 &
( ( sleep 1000 & ) & )
sh -c 'setsid sh -c "sleep 1000 & wait" &'
echo '{"status": "success"}'
