#!/usr/bin/env python3
# Writes 10 MB to stderr interleaved with 2 MB of JSON Lines on stdout, then a result: a host
# that drains one pipe at a time deadlocks here.
import sys
err = b"e" * 1023 + b"\n"
for i in range(10 * 1024):
    sys.stderr.buffer.write(err)
    if i % 5 == 0:
        sys.stdout.write('{"type": "progress", "message": "%s", "done": %d}\n' % ("p" * 1000, i))
sys.stderr.flush()
sys.stdout.write('{"type": "result", "status": "success", "result": {"lines": 10240}}\n')
