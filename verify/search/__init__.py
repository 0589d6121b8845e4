"""The searches a property's proof runs.

One SMT query (Bitwuzla or Z3 by kind, re-checked by another solver), BMC and k-induction
unrollings, explicit-state exploration.
"""
