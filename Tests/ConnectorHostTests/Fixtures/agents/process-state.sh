#!/bin/sh
# Reports what it was started with: its ignored and blocked signals (hex masks from
# /proc/<pid>/status), whether it leads its own process group, and where its descriptors point.
read -r line < "$2" || true
ignored=$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status)
blocked=$(awk '/^SigBlk:/ { print $2 }' /proc/$$/status)
group=$(awk '{ print $5 }' /proc/$$/stat)
descriptors=$(for fd in /proc/$$/fd/*; do printf '%s ' "$(readlink "$fd")"; done)
printf '{"status":"success","ignored":"%s","blocked":"%s","leadsGroup":%s,"descriptors":"%s"}\n' \
    "$ignored" "$blocked" "$([ "$group" = "$$" ] && echo true || echo false)" "$descriptors"
