"""verify: a model checker for the Linux kernel's KVVec::shrink_to and the binder policy that calls it."""

__version__ = "0.1.0"
