"""Rebalancing: drift, triggers, trade lists and (later) the optimizer. Pure computation on Decimals;
numpy and scipy are allowed here, floats only inside the optimizer, converted at its edges."""
