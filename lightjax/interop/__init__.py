"""Interop with other frameworks and runtimes: PyTorch (torchvision/timm) weight import and
``jax.export`` serialization of a run's inference function."""
