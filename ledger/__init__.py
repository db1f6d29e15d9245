"""The append-only SQLite event store: append, read, verify.

Owns: the `events`, `prices` and `snapshots` tables, canonical JSON, the hash
chain, optimistic concurrency and idempotency keys.

May import: the standard library, sqlite-utils, cattrs, and domain's event
registry through `ledger.codec` only. Never projections/, commands/ or click.
"""
