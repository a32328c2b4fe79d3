#!/usr/bin/env python3
"""Reads a ledger state file from another process (SQLite's default VFS) until a stop file
appears (writing how many reads it made to <stop>.reads as it goes), checking at every read what each committed transaction keeps true: rows come in pairs
(+k, -k), so the count is even and the sum zero. A commit seen before all its frames reached the
WAL would break one of them, or the page checks. Prints one JSON line; exits 0 if all held."""
import json, os, sqlite3, sys

path, stop = sys.argv[1], sys.argv[2]
db = sqlite3.connect(path, timeout=30, isolation_level=None)
reads, seen, violations = 0, set(), []
while True:
    stopping = os.path.exists(stop)
    try:
        # Both reads in one read transaction: one snapshot.
        db.execute("BEGIN")
        count, total = db.execute("SELECT COUNT(*), COALESCE(SUM(v), 0) FROM ledger").fetchone()
        by_index = db.execute("SELECT COUNT(*) FROM ledger INDEXED BY ledger_v WHERE v > -1000000000").fetchone()[0]
        db.execute("COMMIT")
    except sqlite3.Error as error:
        violations.append("read failed: %s" % error)
        count = None
        break
    reads += 1
    seen.add(count)
    if count % 2 or total != 0 or by_index != count:
        violations.append("count %d, sum %d, by index %d" % (count, total, by_index))
    if stopping:
        break
    if reads % 20 == 1:
        with open(stop + ".reads.tmp", "w") as progress:
            progress.write(str(reads))
        os.replace(stop + ".reads.tmp", stop + ".reads")
try:
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
except sqlite3.Error as error:
    integrity = "integrity check failed: %s" % error
print(json.dumps({"reads": reads, "distinctCounts": len(seen), "finalCount": count, "integrity": integrity, "violations": violations[:5]}))
sys.exit(0 if not violations and integrity == "ok" else 1)
