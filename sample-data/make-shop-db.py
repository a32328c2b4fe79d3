#!/usr/bin/env python3
"""Writes sample-data/shop.sqlite, the table the sample `shop-orders` connection extracts.

The file is committed; run this to recreate it, or with --touch N to update N orders (as a shop
would) and see the incremental run pick up only those.
"""
import os
import sqlite3
import sys

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shop.sqlite")
if "--touch" in sys.argv:
    count = int(sys.argv[sys.argv.index("--touch") + 1])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE orders SET status = 'shipped', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                   "WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT ?)", (count,))
    sys.exit(0)

if os.path.exists(path):
    os.unlink(path)
with sqlite3.connect(path) as db:
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total_cents INTEGER NOT NULL, "
               "status TEXT NOT NULL, updated_at TEXT NOT NULL)")
    customers = ["ada", "grace", "linus", "margaret", "ken", "barbara"]
    for i in range(1, 41):
        db.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                   (i, customers[i % len(customers)], 1000 + 137 * i, "placed", "2026-11-%02dT%02d:00:00.000Z" % (1 + i % 20, i % 24)))
db = sqlite3.connect(path)
db.execute("VACUUM")
db.close()
