"""The gait transformer (after Cotton et al.): ``model.py`` (the network, torch), ``features.py``
(what it sees and predicts), ``runtime.py`` (sliding windows in the worker), ``events.py``,
``cycles.py``; weights ``gait_transformer.onnx``, card ``gait_transformer.md``."""
