"""Speed figures, one module per ``gaitstream bench`` word. Offline: may read capture as data."""
