#!/usr/bin/env python3
# Writes 100 MB to stdout, far over any sane cap.
import sys
chunk = b"x" * (1 << 20)
for _ in range(100):
    sys.stdout.buffer.write(chunk)
sys.stdout.flush()
