"""Per-layer rules: which hooks and which padding constant each convolution/dense layer gets.

A :class:`Rule` selects layers by *module path* (a regular expression matched with
``re.fullmatch`` against the path joined by ``'/'``, e.g. ``'unit3/pw/conv'``, ``'head/fc'``; paths
are relative to the module ``apply`` is called on, so a layer applied on its own has the path
``''``) and by *kind* (``'standard'``, ``'depthwise'``,
``'pointwise'``, ``'group'``, ``'transposed'``, ``'fc'``), the way qwix's
``QuantizationRule(module_path=...)`` selects layers. Rules are installed through
``LayerFactory(rules=(...))``; every layer created by that factory resolves them when called:

- every matching rule applies, in order: kernel hooks are chained, input hooks are chained
  (the factory's own ``kernel_hook`` / ``input_hook`` shorthand runs first, as a catch-all),
  output hooks are chained;
- the spatial padding constant is the ``pad_value`` of the last matching rule that sets one
  (default 0.0; see :mod:`lightjax.layers.conv` for where it applies).

Resolution is plain Python at trace time: a layer that no rule matches computes exactly what it
computes without rules.

"Every convolution except the first and the classifier", in one line::

    Rule(module_path=r'(?!stem/|head/).*',
         kinds=('standard', 'depthwise', 'pointwise', 'group', 'transposed'),
         kernel_hook=binarize_kernel, input_hook=binarize_input, pad_value=-1.0)

On MobileNetV1 it matches ``unit1/dw/conv`` ... ``unit13/pw/conv`` and neither ``stem/conv`` nor
``head/fc``; :func:`matches` lists what a set of rules selects in a model.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lightjax.errors import InvalidTypeError, ValidationError
from lightjax.layers import hooks

#: Layer kinds (the ``kind`` of every lightjax convolution/dense layer).
LAYER_KINDS = ("standard", "depthwise", "pointwise", "group", "transposed", "fc")


def check_pad_value(value: Any, what: str = "pad_value") -> float:
    """``value`` as a float if it is a finite real number, else ``ValidationError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number (e.g. 0.0, or -1.0 for +-1 binary "
                              f"inputs), got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Rule:
    """Hooks and padding constant for the layers whose path and kind match.

    Attributes:
      module_path: regular expression, ``re.fullmatch``-ed against the layer's module path joined
        by ``'/'`` (``'.*'``: every layer).
      kinds: layer kinds it applies to (subset of :data:`LAYER_KINDS`); ``None``: all kinds.
      kernel_hook: ``hook(layer, kernel, train) -> kernel`` (see :mod:`lightjax.layers.hooks`).
      input_hook: ``hook(layer, x, train) -> x``.
      output_hook: ``hook(layer, y, x, train) -> y`` (``y`` before the bias, ``x`` the input as
        given to the layer).
      pad_value: constant for spatial padding (``None``: this rule does not set it).
    """

    module_path: str = ".*"
    kinds: tuple[str, ...] | None = None
    kernel_hook: hooks.KernelHook | None = None
    input_hook: hooks.InputHook | None = None
    pad_value: float | None = None
    output_hook: hooks.OutputHook | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.module_path, str):
            raise InvalidTypeError(f"Rule: module_path must be a regular expression string, got "
                                   f"{type(self.module_path).__name__}")
        try:
            re.compile(self.module_path)
        except re.error as err:
            raise ValidationError(f"Rule: module_path {self.module_path!r} is not a valid regular "
                                  f"expression ({err})") from None
        if self.kinds is not None:
            kinds = (self.kinds,) if isinstance(self.kinds, str) else self.kinds
            if not isinstance(kinds, (tuple, list)) or not kinds:
                raise ValidationError(f"Rule: kinds must be None or a non-empty tuple of layer "
                                      f"kinds from {', '.join(LAYER_KINDS)}; got {self.kinds!r}")
            unknown = [k for k in kinds if k not in LAYER_KINDS]
            if unknown:
                raise ValidationError(f"Rule: unknown layer kinds {unknown}; allowed: "
                                      f"{', '.join(LAYER_KINDS)}")
            object.__setattr__(self, "kinds", tuple(kinds))
        hooks.check(self.kernel_hook, "Rule: kernel_hook")
        hooks.check(self.input_hook, "Rule: input_hook")
        hooks.check(self.output_hook, "Rule: output_hook", output=True)
        if self.pad_value is not None:
            object.__setattr__(self, "pad_value", check_pad_value(self.pad_value,
                                                                  "Rule: pad_value"))

    def matches(self, path: str, kind: str) -> bool:
        """Whether this rule applies to a layer at module ``path`` (``'/'``-joined) of ``kind``."""
        return ((self.kinds is None or kind in self.kinds)
                and re.fullmatch(self.module_path, path) is not None)


class Resolved(NamedTuple):
    """What one layer gets: its chained hooks (``None``: none) and padding constant."""

    kernel_hook: hooks.KernelHook | None
    input_hook: hooks.InputHook | None
    pad_value: float
    output_hook: hooks.OutputHook | None = None


def check_rules(rules: Any, what: str = "rules") -> tuple[Rule, ...]:
    """``rules`` as a tuple of :class:`Rule` (``InvalidTypeError`` otherwise)."""
    if isinstance(rules, Rule):
        return (rules,)
    if not isinstance(rules, (tuple, list)):
        raise InvalidTypeError(f"{what} must be a tuple of lightjax.layers.rules.Rule, got "
                               f"{type(rules).__name__}")
    bad = [type(r).__name__ for r in rules if not isinstance(r, Rule)]
    if bad:
        raise InvalidTypeError(f"{what} must contain only lightjax.layers.rules.Rule, got {bad}")
    return tuple(rules)


def resolve(rules: Sequence[Rule], path: str, kind: str, *,
            kernel_hook: hooks.KernelHook | None = None,
            input_hook: hooks.InputHook | None = None, pad_value: float = 0.0) -> Resolved:
    """Hooks and padding constant of a layer: the given catch-all hooks first, then every rule of
    ``rules`` matching (``path``, ``kind``) in order; the last matching ``pad_value`` wins."""
    kernel_hooks, input_hooks, output_hooks = [kernel_hook], [input_hook], []
    for rule in rules:
        if rule.matches(path, kind):
            kernel_hooks.append(rule.kernel_hook)
            input_hooks.append(rule.input_hook)
            output_hooks.append(rule.output_hook)
            if rule.pad_value is not None:
                pad_value = rule.pad_value
    return Resolved(hooks.chain(*kernel_hooks), hooks.chain(*input_hooks), pad_value,
                    hooks.chain(*output_hooks))


def layer_kinds(model: nn.Module, input_shape: Sequence[int], **call_kwargs: Any) -> dict[str, str]:
    """``{layer path: kind}`` of every lightjax conv/dense layer of ``model``, in call order.

    Traced abstractly (``jax.eval_shape`` of ``init`` on zeros of ``input_shape``, NHWC):
    nothing is computed. ``call_kwargs`` go to ``model.__call__`` (``train=False`` by default).
    """
    from lightjax.layers import conv as conv_lib  # conv imports this module

    call_kwargs.setdefault("train", False)
    found: dict[str, str] = {}

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and isinstance(module, conv_lib.LAYER_TYPES):
            found.setdefault("/".join(module.path), module.kind)
        return next_fun(*args, **kwargs)

    def init():
        with nn.intercept_methods(interceptor):
            return model.init(jax.random.PRNGKey(0),
                              jnp.zeros(tuple(int(d) for d in input_shape), jnp.float32),
                              **call_kwargs)

    jax.eval_shape(init)
    return found


def matches(model: nn.Module, input_shape: Sequence[int], rules: Sequence[Rule] | None = None,
            **call_kwargs: Any) -> dict[str, list[int]]:
    """``{layer path: [indices of the rules matching it]}`` for every conv/dense layer of ``model``.

    ``rules`` defaults to the model's ``layers.rules`` (its :class:`LayerFactory`'s); indices are
    positions in that tuple. Layers no rule matches map to ``[]``.
    """
    if rules is None:
        factory = getattr(model, "layers", None)
        rules = getattr(factory, "rules", None)
        if rules is None:
            raise InvalidTypeError(f"{type(model).__name__} has no `layers` LayerFactory with "
                                   f"rules; pass rules=...")
    rules = check_rules(rules)
    return {path: [i for i, r in enumerate(rules) if r.matches(path, kind)]
            for path, kind in layer_kinds(model, input_shape, **call_kwargs).items()}
