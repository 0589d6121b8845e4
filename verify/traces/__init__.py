"""Traces: the ITF format and its validated loader, replay on the Python model, table, graph, plot, regression tests."""
