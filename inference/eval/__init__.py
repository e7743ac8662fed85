"""Accuracy against ground truth, one module per ``gaitstream eval`` word (and the metrics as plain
functions). Offline: may read capture's readers and simulator as data."""
