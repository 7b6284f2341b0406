"""Per-layer rules: validation, which layers match, hook order, the train flag, no extra ops."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import models
from lightjax.errors import InvalidTypeError, ValidationError
from lightjax.layers import (Conv, Dense, InvertedResidual, LayerFactory, Rule, ShuffleV1Unit,
                             ShuffleV2Unit, rules)
from lightjax.prune import masking, trace

CONV_KINDS = ("standard", "depthwise", "pointwise", "group", "transposed")
#: Every convolution except the first and the classifier, in one line.
BUT_FIRST_AND_LAST = Rule(module_path=r"(?!stem/|head/).*", kinds=CONV_KINDS)
X = jnp.ones((2, 8, 8, 3))


def v1(**kwargs):
    return models.create("mobilenet_v1", alpha=0.25, num_classes=10, stem_stride=1, **kwargs)


def test_rule_validation():
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        Rule(module_path="unit(")
    with pytest.raises(InvalidTypeError, match="module_path must be a regular expression"):
        Rule(module_path=3)
    with pytest.raises(ValidationError, match=r"unknown layer kinds \['conv'\]; allowed: standard"):
        Rule(kinds=("conv",))
    with pytest.raises(ValidationError, match="non-empty tuple"):
        Rule(kinds=())
    with pytest.raises(ValidationError, match="pad_value must be a finite number"):
        Rule(pad_value=float("nan"))
    with pytest.raises(InvalidTypeError, match=r"must accept \(layer, value, train\)"):
        Rule(kernel_hook=lambda layer, kernel: kernel)
    with pytest.raises(InvalidTypeError, match="must contain only"):
        LayerFactory(rules=("unit1/.*",))
    assert Rule(kinds="fc").kinds == ("fc",)  # one kind may be given bare
    assert LayerFactory(rules=[Rule()]).rules == (Rule(),)  # hashable tuple
    hash(LayerFactory(rules=(BUT_FIRST_AND_LAST,)))


def test_every_conv_but_first_and_classifier_on_mobilenet_v1():
    found = rules.matches(v1(), X.shape, [BUT_FIRST_AND_LAST, Rule(kinds=("fc",))])
    assert found["stem/conv"] == [] and found["head/fc"] == [1]
    units = {p: m for p, m in found.items() if p.startswith("unit")}
    assert len(units) == 26 and all(m == [0] for m in units.values())
    assert rules.layer_kinds(v1(), X.shape)["unit3/dw/conv"] == "depthwise"
    # by default the model's own rules
    model = v1(layers=LayerFactory(rules=(Rule(r"unit1/.*"),)))
    assert [p for p, m in rules.matches(model, X.shape).items() if m] == ["unit1/dw/conv",
                                                                          "unit1/pw/conv"]


class OneConv(nn.Module):
    layers: LayerFactory

    @nn.compact
    def __call__(self, x, train=False):
        return self.layers.conv(2, 3, name="a")(x, train=train)


def _tag(name, log):
    def hook(layer, value, train):
        log.append((name, "/".join(layer.path), train))
        return value + 1.0 if name.startswith("k") else value * 2.0
    return hook


def test_matching_rules_chain_in_order_after_the_shorthand():
    log = []
    factory = LayerFactory(
        kernel_hook=_tag("k0", log), input_hook=_tag("i0", log),
        rules=(Rule(r"a", kernel_hook=_tag("k1", log), pad_value=1.0),
               Rule(r"b", input_hook=_tag("i-b", log)),            # does not match
               Rule(r".*", kinds=("standard",), input_hook=_tag("i2", log), pad_value=-1.0),
               Rule(r".*", kinds=("fc",), kernel_hook=_tag("k-fc", log)),  # wrong kind
               Rule(r"a", kernel_hook=_tag("k3", log))))
    net = OneConv(factory)
    x = jnp.ones((1, 4, 4, 1))
    variables = net.init(jax.random.PRNGKey(0), x)
    log.clear()
    net.apply(variables, x, train=True)
    assert [entry[0] for entry in log] == ["i0", "i2", "k0", "k1", "k3"]
    assert all(entry[2] is True for entry in log)
    resolved = rules.resolve(factory.rules, "a", "standard")
    assert resolved.pad_value == -1.0  # the last matching rule that sets one
    assert rules.resolve(factory.rules, "a", "pointwise").pad_value == 1.0
    assert rules.resolve(factory.rules, "c", "pointwise") == (None, None, 0.0, None)


def test_hooks_see_train_in_every_layer_of_every_block():
    seen = {}

    def hook(layer, x, train):
        seen.setdefault("/".join(layer.path), set()).add(train)
        return x

    factory = LayerFactory(rules=(Rule(input_hook=hook),))
    x8 = jnp.ones((2, 4, 4, 8))
    blocks = ((v1(se_reduction=4, layers=factory), X),  # ConvBN, SeparableUnit, SE, head
              (InvertedResidual(16, 8, layers=factory), x8),
              (ShuffleV1Unit(8, 4, groups=2, layers=factory), x8),
              (ShuffleV2Unit(4, strides=2, layers=factory), x8))
    for block, x in blocks:
        seen.clear()
        shapes = jax.eval_shape(lambda: block.init(jax.random.PRNGKey(0), x, train=False))
        paths = set(seen)  # every layer, called with train=False
        assert paths and all(v == {False} for v in seen.values())
        seen.clear()
        jax.eval_shape(lambda v: block.apply(v, x, train=True, mutable=["batch_stats"]), shapes)
        assert set(seen) == paths and all(v == {True} for v in seen.values()), (block, seen)
    assert {"unit1/se/reduce", "unit1/se/expand", "head/fc"} <= set(
        rules.layer_kinds(blocks[0][0], X.shape))


def _jaxpr(model, x):
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
    return str(jax.make_jaxpr(
        lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(shapes))


def test_rules_that_match_nothing_or_pad_with_zero_add_no_ops():
    plain = _jaxpr(v1(), X)
    no_ops = (Rule(module_path="nothing/.*", input_hook=lambda layer, x, train: x * 2),
              Rule(pad_value=0.0), Rule(kinds=("fc",), pad_value=-1.0))
    assert _jaxpr(v1(layers=LayerFactory(rules=no_ops)), X) == plain
    assert _jaxpr(v1(layers=LayerFactory(rules=(Rule(pad_value=-1.0),))), X) != plain


def test_masking_installs_a_last_rule_and_strip_hooks_removes_rules():
    double = Rule(r"unit2/.*", input_hook=lambda layer, x, train: 2.0 * x)
    model = v1(layers=LayerFactory(rules=(double,)))
    net = masking.masked(model)
    assert net.layers.rules[0] == double
    assert isinstance(net.layers.rules[-1].input_hook, masking.MaskInputs)
    assert masking.masked(net) is net
    assert masking.unmasked(net).layers.rules == (double,)
    assert trace.strip_hooks(net).layers.rules == ()
    # the mask multiplies the result of the other input hooks: a zero mask wins over doubling
    layer = net.layers.pointwise(2, name="pw")
    x = jnp.ones((1, 2, 2, 3))
    variables = layer.init(jax.random.PRNGKey(0), x)
    variables = {**variables, "masks": {"input": jnp.array([1.0, 0.0, 1.0])}}
    y = layer.apply(variables, x)
    kernel = variables["params"]["kernel"][0, 0]
    np.testing.assert_allclose(y[0, 0, 0], kernel[0] + kernel[2], rtol=1e-6)


def test_direct_layers_take_rules_too():
    layer = Dense(2, rules=(Rule(kinds=("fc",), input_hook=lambda layer, x, train: 0 * x),))
    variables = layer.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    np.testing.assert_array_equal(layer.apply(variables, jnp.ones((1, 3))),
                                  variables["params"]["bias"][None])
    with pytest.raises(ValidationError, match="pad_value must be a finite number"):
        Conv(2, pad_value=float("inf"))
