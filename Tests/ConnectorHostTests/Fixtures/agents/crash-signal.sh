#!/bin/sh
# Dies of the signal named in $SIG (sent to itself).
kill -"${SIG:-SEGV}" $$
sleep 5
