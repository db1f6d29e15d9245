"""The write side and the CLI: parse input, load state, ask the domain to decide, append events.

Owns: use cases (open an account, record cash and trades, void, import,
export, rebalance), the click CLI and its rendering, the demo.

May import: domain/, ledger/, projections/, click. The only package that appends.
"""

import os

# Two BLAS threads are slower than one on these 2-core machines for the optimizer's small dense
# solves (measured: risk parity at 200 assets 8 ms with one thread, seconds with two under load).
# It must be set before numpy is first imported, which the CLI does through the packages below.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
