#!/bin/sh
# Prints something that is not the protocol, then exits 0.
echo '{"type": "log", "message": "fine so far"}'
echo 'hello, this is not JSON'
