"""The motion diffusion anomaly scorer (after Guan et al.): ``config.py`` (prompts, sizes, noise
schedule, files; no torch), ``model.py`` (the denoiser, torch), ``features.py`` (HumanML3D features), ``scorer.py`` (per-cycle scores in the worker); weights
``motion_diffusion.onnx`` with its config and feature statistics, card ``motion_diffusion.md``."""
