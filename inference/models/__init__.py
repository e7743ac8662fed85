"""The learned models: ``backends.py`` runs any of them (onnxruntime, torch, TensorRT), and each
model has a folder with its code, weights and model card."""
