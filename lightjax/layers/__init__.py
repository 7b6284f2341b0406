"""Layers: convolutions with compression hooks, activations, and the blocks models share."""
from lightjax.layers.batch_norm import BatchNorm
from lightjax.layers.conv import (Conv, ConvTranspose, Dense, DepthwiseConv, GroupConv,
                                  PointwiseConv)
from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.inverted_residual import InvertedResidual
from lightjax.layers.rules import Rule
from lightjax.layers.separable import SeparableUnit
from lightjax.layers.shuffle import ShuffleV1Unit, ShuffleV2Unit, channel_shuffle
from lightjax.layers.squeeze_excite import SqueezeExcite

__all__ = ["BatchNorm", "Conv", "ConvBN", "ConvTranspose", "Dense", "DepthwiseConv", "GroupConv",
           "InvertedResidual", "LayerFactory", "PointwiseConv", "Rule", "SeparableUnit",
           "ShuffleV1Unit", "ShuffleV2Unit", "SqueezeExcite", "channel_shuffle"]
