"""Layers: convolutions with compression hooks, activations, and the blocks models share."""
from lightjax.layers.conv import Conv, Dense, DepthwiseConv, GroupConv, PointwiseConv
from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory

__all__ = ["Conv", "ConvBN", "Dense", "DepthwiseConv", "GroupConv", "LayerFactory",
           "PointwiseConv"]
