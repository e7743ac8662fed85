"""Data the offline tools read: ground truth, simulated sensor views, training and evaluation sets.

Live code (the worker, the analysis, the models, pose) never imports from here.
"""

from pathlib import Path

# ../shared/data beside the checkout: the default folder of the offline tools' real recordings.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
