#!/usr/bin/env python3
"""fsyncs per second in a folder (SQLite's durable commit rate depends on it)."""
import os, sys, tempfile, time
d = sys.argv[1] if len(sys.argv) > 1 else "."
fd, path = tempfile.mkstemp(dir=d)
n, start = 0, time.time()
while time.time() - start < 1.0:
    os.write(fd, b"x" * 512)
    os.fsync(fd)
    n += 1
os.close(fd)
os.unlink(path)
print(f"fsync_per_s={n / (time.time() - start):.0f}")
