"""The searches a property's proof runs.

One SMT query (Z3, re-checked by a second solver), BMC and k-induction unrollings, explicit-state exploration.
"""
