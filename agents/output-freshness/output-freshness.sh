#!/bin/sh
# output-freshness: a Nagios-style check ("output": "nagios") that another connector's output is
# recent. Fields: path (a folder), warningMinutes (default 60), criticalMinutes (default 1440).
# OK when the newest file is younger than warningMinutes, WARNING past it (and while the folder
# does not exist yet: nothing has run), CRITICAL past criticalMinutes or when the folder holds no
# file at all. Exit codes are Nagios's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
path=${CONNECTOR_HOST_FIELD_PATH:-}
warning=${CONNECTOR_HOST_FIELD_WARNINGMINUTES:-60}
critical=${CONNECTOR_HOST_FIELD_CRITICALMINUTES:-1440}

if [ -z "$path" ]; then
    echo "UNKNOWN - the connection needs a \"path\" field"
    exit 3
fi
case "$warning$critical" in *[!0-9]*)
    echo "UNKNOWN - warningMinutes and criticalMinutes must be whole numbers"
    exit 3 ;;
esac
if [ ! -d "$path" ]; then
    echo "WARNING - $path does not exist yet (has its connector run?)"
    exit 1
fi

newest=$(find "$path" -type f ! -name '.*' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
files=$(find "$path" -type f ! -name '.*' 2>/dev/null | wc -l | tr -d ' ')
if [ -z "$newest" ]; then
    echo "CRITICAL - $path holds no file | files=0;;;0"
    exit 2
fi
now=$(date +%s)
age=$(( now - ${newest%.*} ))
[ "$age" -lt 0 ] && age=0
perf="age=${age}s;$((warning * 60));$((critical * 60));0 files=$files;;;0"
minutes=$(( age / 60 ))
if [ "$age" -ge $((critical * 60)) ]; then
    echo "CRITICAL - newest of $files file(s) in $path is ${minutes}m old | $perf"
    exit 2
elif [ "$age" -ge $((warning * 60)) ]; then
    echo "WARNING - newest of $files file(s) in $path is ${minutes}m old | $perf"
    exit 1
fi
echo "OK - newest of $files file(s) in $path is ${minutes}m old | $perf"
exit 0
