"""The pure core of Folio: value types, events, rules and folds.

Owns: what a quantity, price, symbol and account id are; the events and their
registry; the rules that decide whether an event may happen (lot relief,
holding periods, cash limits); the fold of events into books.

May import: the standard library, attrs, numpy/scipy (rebalancing only).
Never: sqlite, cattrs, click, the clock, the environment, or the packages
ledger/, projections/, commands/. Time and settings come in as arguments.
"""
