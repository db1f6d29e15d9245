"""The read side: fold the log into books and serve read models as of any point.

Owns: the choice of events for a point in both time axes (`as_of` effective
date, `known_at` seq or timestamp), voids, snapshots that make the fold fast,
and the read models (positions, lots, cash, gains, log).

May import: domain/ and ledger/ (reading only). Never commands/ or click, and
it never appends an event (snapshots are a cache, outside the chain).
"""
