"""Checking: each (property, model) pair run to a verdict, in worker processes.

The engine, the runner, the proof cache, the mutants and the cross-checks of the two encodings.
"""
