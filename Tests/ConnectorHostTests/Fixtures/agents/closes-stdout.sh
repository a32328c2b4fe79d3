#!/bin/sh
# Closes stdout and stderr, then keeps working for a while: the host must wait for the exit.
exec 1>&- 2>&-
sleep 1
exit 3
