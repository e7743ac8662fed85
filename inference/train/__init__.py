"""Training, one module per ``gaitstream train`` word. Offline: may read capture as data."""
