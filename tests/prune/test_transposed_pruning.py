"""Pruning through a transposed conv: its output channels are prunable and tied by a skip add,
its input channels follow their producer; masked and compact models agree."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lightjax import cost
from lightjax.layers import ConvBN, LayerFactory
from lightjax.models import base
from lightjax.prune import compact, groups as groups_lib, masking

from model_fixtures import random_variables

X = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8, 8, 3)), jnp.float32)


class TinyFCN(nn.Module):
    """stem -> a -> down (3x3/2) -> up (transposed 4/2) + a -> b -> out: a user's own model."""

    widths: tuple[int, ...] | None = None
    layers: LayerFactory = LayerFactory()

    @staticmethod
    def prunable_layers() -> tuple[str, ...]:
        return ("stem", "a", "down", "up", "b")

    def resolved_widths(self) -> tuple[int, ...]:
        return base.check_widths("tiny_fcn", self.prunable_layers(), self.widths, (6, 8, 6, 8, 5))

    @nn.compact
    def __call__(self, x, train=False):
        w = dict(zip(self.prunable_layers(), self.resolved_widths()))
        x = ConvBN(w["stem"], 3, layers=self.layers, name="stem")(x, train)
        a = ConvBN(w["a"], 1, layers=self.layers, name="a")(x, train)
        d = ConvBN(w["down"], 3, 2, layers=self.layers, name="down")(a, train)
        u = self.layers.conv_transpose(w["up"], 4, 2, name="up")(d, train=train)
        u = self.layers.norm(train, name="up_bn")(u)
        y = ConvBN(w["b"], 1, layers=self.layers, name="b")(nn.relu(u + a), train)
        return self.layers.pointwise(3, use_bias=True, name="out")(y, train=train)


def test_transposed_conv_groups_and_masked_equals_compact():
    model = TinyFCN()
    g = groups_lib.derive(model, (1, 8, 8, 3))
    assert g.kinds["up"] == "transposed"
    assert g["up"].name == "a" and g["a"].layers == ("a", "up") and g["a"].prunable
    assert g["down"].prunable and g["b"].prunable and not g["stem"].prunable
    np.testing.assert_array_equal(g.inputs["up"], g.outputs["down/conv"])  # follows its producer
    np.testing.assert_array_equal(g.inputs["up_bn"], g.outputs["up"])
    gm = g.ones()
    gm["a"][[1, 4, 6]] = 0
    gm["down"][[0, 5]] = 0
    gm["b"][2] = 0
    net = masking.masked(model)
    variables = masking.apply(random_variables(net, X, False), g, gm)
    small, small_vars = compact.compact(net, variables, g, gm, (1, 8, 8, 3))
    assert small.resolved_widths() == (6, 5, 4, 5, 4)
    assert small_vars["params"]["up"]["kernel"].shape == (4, 4, 4, 5)
    for train in (False, True):
        kw = dict(mutable=["batch_stats"]) if train else {}
        full = jax.jit(lambda v, x: net.apply(v, x, train, **kw))(variables, X)
        comp = jax.jit(lambda v, x: small.apply(v, x, train, **kw))(small_vars, X)
        if train:
            (full, _), (comp, _) = full, comp
        np.testing.assert_allclose(full, comp, rtol=1e-5, atol=1e-5)
    report, full_report = cost.count(small, (1, 8, 8, 3)), cost.count(model, (1, 8, 8, 3))
    up = next(r for r in report.layers if r.name == "up")
    assert up.macs == 4 * 4 * 4 * 5 * 4 * 4  # k·k·Cin·Cout·Hin·Win of the compact layer
    assert report.macs < full_report.macs
