#!/bin/sh
# Fan-out agent for several hosts sharing one state. The root asks for `children` children
# (field); each child sleeps `sleep` seconds (field), then appends "<key> <host pid>" to the
# `log` file (field): the host pid is this agent's parent, the host that ran it.
payload=$2
field() { sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^,\"}]*\).*/\1/p" "$payload" | head -n 1; }
log=$(field log)
if grep -q '"isRootTask" *: *true' "$payload"; then
    n=$(field children)
    i=0
    while [ "$i" -lt "$n" ]; do
        echo "{\"type\":\"child\",\"key\":\"k$i\",\"metadata\":{\"key\":\"k$i\"}}"
        i=$((i + 1))
    done
    echo "root $PPID" >>"$log"
else
    # The payload is pretty-printed: the key is on a line of its own inside taskMetadata.
    key=$(awk '/"taskMetadata"/ { inside = 1 } inside && /"key"/ { sub(/.*"key" *: *"/, ""); sub(/".*/, ""); print; exit }' "$payload")
    sleep "$(field sleep)"
    echo "$key $PPID" >>"$log"
fi
echo '{"type":"result","status":"success"}'
