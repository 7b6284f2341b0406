"""lightjax: lightweight CNNs (MobileNet, ShuffleNet) and their compression in JAX/Flax."""
__version__ = "0.1.0"
