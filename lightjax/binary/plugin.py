"""Binarization as a compression plug-in (:mod:`lightjax.train.compression`).

- **state**: per binarized layer a weight selection ``(Cout,)`` and (when inputs are binarized) an
  input selection ``(H, W)`` (``(1,)`` for dense layers), float 0/1, in
  ``TrainState.compression['binary']`` as ``{layer path: {'weights', 'inputs'}}``;
- **model transform**: one rule (:class:`lightjax.layers.rules.Rule`) installing
  :class:`~lightjax.binary.hooks.BinaryKernel` / :class:`~lightjax.binary.hooks.BinaryInput` and the
  padding constant on the selected layers, placed before every other rule (so a pruning mask
  multiplies the binarized input);
- **optax wrapper**: :func:`lightjax.binary.optim.weight_clip` on the binarized kernels (latent
  weights stay in ``[-c, c]``);
- **host action**: the stage schedule. Stage ``i`` starts after ``sum(stage_epochs[:i])`` epochs and
  sets each member's selections from ``weight_ratios[i]`` / ``input_ratios[i]``
  (:mod:`lightjax.binary.selection`; stochastic selections are re-drawn at each stage from
  ``seed``, the stage and the current weights, so a resumed run draws the same channels).

A config's ``binary`` section (:func:`section`) describes it. ``method``: ``None`` (off), ``'bwn'``
(binary weights with scale ``alpha``), ``'bnn'`` (+-1 weights and inputs), ``'xnor'`` (``alpha``
and +-1 inputs; ``input_scale=True`` adds XNOR-Net's input scale ``K``, the channel-mean ``|x|``
averaged over each kernel window, multiplying the result per output position:
:class:`~lightjax.binary.hooks.InputScale`), ``'horq'`` (``alpha`` and the order-``order`` residual input approximation). ``layers``:
a regular expression on module paths (default ``None``: every conv/dense layer but the first and
the output layers — the last, or a model's ``output_layers()`` such as YOLOv3's three heads —
which stay full precision). ``activation``: the model's activation while binarizing
(``None``: ``'identity'`` when every layer but the first and the last gets order-1 binary inputs —
the sign of a ReLU output is always +1, so XNOR-Net and BNN blocks drop the ReLU and use the sign
as the non-linearity — and the model's own otherwise, e.g. when ``layers`` picks a few layers; ``'model'``: keep the model's; or a registered activation name). Ratios, selection mode, stage lengths and seed only change
selection values: sweep members differing in them train in one vmapped group (:data:`TRACED`).
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lightjax import cost
from lightjax.binary import hooks, optim, quantizers, selection
from lightjax.errors import ValidationError
from lightjax.layers import activations
from lightjax.layers import rules as rules_lib
from lightjax.train import compression
from lightjax.train.compression import Compression, StateAccess

NAME = "binary"

#: ``method`` -> (weight scale alpha, input order (0: inputs stay float), input scale).
METHODS = {"bwn": (True, 0, False), "bnn": (False, 1, False), "xnor": (True, 1, False),
           "horq": (True, None, True)}

#: Fields of the ``binary`` section that may differ between members of one vmapped group.
TRACED = ("weight_ratios", "input_ratios", "selection", "stage_epochs", "seed")

#: Pad values a binarized layer may use (0: a true zero; +-1: binary padding).
PAD_VALUES = (-1.0, 0.0, 1.0)


def section() -> ml_collections.ConfigDict:
    """The default ``binary`` section (``method=None``: no binarization)."""
    return ml_collections.ConfigDict(dict(
        init_from=None, method=None, order=2, input_scale=False, layers=None, kinds=None,
        activation=None,
        pad_value=0.0, weight_quantizer="ste_sign", input_quantizer="ste_sign", clip_value=1.0,
        weight_clip=1.0, selection="first", weight_ratios=(1.0,), input_ratios=(1.0,),
        stage_epochs=(), seed=0))


@dataclasses.dataclass(frozen=True)
class Layers:
    """What a method does to a layer (static: one compiled program)."""

    method: str
    order: int
    input_scale: bool
    pad_value: float
    weight_quantizer: str
    input_quantizer: str
    clip_value: float | None
    activation: str | None = None  # the model's activation while binarizing (None: its own)

    @property
    def binarizes_inputs(self) -> bool:
        return METHODS[self.method][1] != 0

    def kernel_hook(self) -> hooks.BinaryKernel:
        return hooks.BinaryKernel(self.weight_quantizer, METHODS[self.method][0], self.clip_value)

    def input_hook(self) -> hooks.BinaryInput | None:
        if not self.binarizes_inputs:
            return None
        return hooks.BinaryInput(self.input_quantizer, self.order, METHODS[self.method][2],
                                 self.clip_value)

    def output_hook(self) -> hooks.InputScale | None:
        """XNOR-Net's ``K`` (``input_scale``, order-1 binary inputs only)."""
        return hooks.InputScale() if self.input_scale else None


@dataclasses.dataclass(frozen=True)
class Stages:
    """One member's schedule: stage starts (steps) and the ratios of each stage."""

    starts: tuple[int, ...]
    weight_ratios: tuple[float, ...]
    input_ratios: tuple[float, ...]
    mode: str
    seed: int

    def stage_at(self, step: int) -> int | None:
        """The stage starting at ``step`` (``None``: no stage starts then)."""
        return self.starts.index(step) if step in self.starts else None


def _tuple(value: Any, what: str) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, (tuple, list)):
        raise ValidationError(f"{what} must be a number or a list of numbers, got {value!r}")
    return tuple(value)


def layer_settings(b: ml_collections.ConfigDict) -> Layers:
    """The static part of a ``binary`` section, validated."""
    if b.method not in METHODS:
        raise ValidationError(f"unknown binary.method {b.method!r}; allowed: "
                              f"{', '.join(METHODS)}")
    order = METHODS[b.method][1]
    if order is None:
        order = b.order
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValidationError(f"binary.order (HORQ order) must be an integer >= 1, got "
                                  f"{order!r}")
    for field in ("weight_quantizer", "input_quantizer"):
        if b[field] not in quantizers.names():
            raise ValidationError(f"unknown binary.{field} {b[field]!r}; allowed: "
                                  f"{', '.join(quantizers.names())}")
    if b.pad_value not in PAD_VALUES or isinstance(b.pad_value, bool):
        raise ValidationError(f"binary.pad_value must be -1, 0 or 1 (the constant binary inputs "
                              f"are padded with), got {b.pad_value!r}")
    if b.input_scale not in (True, False):
        raise ValidationError(f"binary.input_scale must be true or false, got {b.input_scale!r}")
    if b.input_scale and (METHODS[b.method][1] != 1):
        raise ValidationError(f"binary.input_scale (XNOR-Net's K) needs sign inputs: method bnn "
                              f"or xnor, not {b.method!r} (HORQ scales each order by its beta)")
    clip = b.clip_value
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))
                             or not math.isfinite(clip) or clip <= 0):
        raise ValidationError(f"binary.clip_value must be a positive number or None, got {clip!r}")
    wc = b.weight_clip
    if wc is not None and (isinstance(wc, bool) or not isinstance(wc, (int, float))
                           or not math.isfinite(wc) or wc <= 0):
        raise ValidationError(f"binary.weight_clip must be a positive number or None, got {wc!r}")
    activation = b.get("activation")
    if activation is None:  # every layer binarized with +-1 inputs: the sign is the non-linearity
        whole = b.get("layers") is None and b.get("kinds") is None
        activation = "identity" if whole and order == 1 and METHODS[b.method][1] == 1 \
            else "model"
    if activation != "model" and activation not in activations.names():
        raise ValidationError(f"unknown binary.activation {activation!r}; allowed: None, 'model' "
                              f"or one of {', '.join(activations.names())}")
    return Layers(b.method, int(order), bool(b.input_scale), float(b.pad_value),
                  b.weight_quantizer, b.input_quantizer, None if clip is None else float(clip),
                  None if activation == "model" else activation)


def stages(b: ml_collections.ConfigDict, steps_per_epoch: int | None,
           total_epochs: float | None = None) -> Stages:
    """A member's stage schedule, validated (``total_epochs``: the run's, to check the last stage
    is reached; ``steps_per_epoch`` ``None``: not known yet, starts counted in epochs)."""
    weight = [selection.check_ratio(r, f"binary.weight_ratios[{i}]")
              for i, r in enumerate(_tuple(b.weight_ratios, "binary.weight_ratios"))]
    inputs = [selection.check_ratio(r, f"binary.input_ratios[{i}]")
              for i, r in enumerate(_tuple(b.input_ratios, "binary.input_ratios"))]
    n = max(len(weight), len(inputs))
    if not weight or not inputs or {len(weight), len(inputs)} - {1, n}:
        raise ValidationError(f"binary.weight_ratios ({len(weight)}) and binary.input_ratios "
                              f"({len(inputs)}) must be non-empty and have one value per stage "
                              f"(or one value for all)")
    weight, inputs = weight * (n // len(weight)), inputs * (n // len(inputs))
    epochs = _tuple(b.stage_epochs, "binary.stage_epochs") if b.stage_epochs != () else ()
    if len(epochs) != n - 1:
        raise ValidationError(f"binary.stage_epochs needs {n - 1} value(s) (the length of every "
                              f"stage but the last), got {len(epochs)}")
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not e > 0:
            raise ValidationError(f"binary.stage_epochs must be positive numbers, got {epochs!r}")
    if total_epochs is not None and sum(epochs) >= total_epochs:
        raise ValidationError(f"binary.stage_epochs sum to {sum(epochs)} but the run trains "
                              f"{total_epochs} epochs; the last stage would never start")
    if isinstance(b.seed, bool) or not isinstance(b.seed, int):
        raise ValidationError(f"binary.seed must be an integer, got {b.seed!r}")
    starts = [int(round(sum(epochs[:i]) * (steps_per_epoch or 1))) for i in range(n)]
    if steps_per_epoch is not None and len(set(starts)) != n:
        raise ValidationError(f"binary.stage_epochs {epochs!r} are shorter than one step")
    return Stages(tuple(starts), tuple(weight), tuple(inputs), selection.check_mode(b.selection),
                  int(b.seed))


def check(cfg: ml_collections.ConfigDict, steps_per_epoch: int | None = None) -> Stages | None:
    """Validate a config's ``binary`` section without building anything (stage lengths against
    steps only when ``steps_per_epoch`` is given)."""
    b = cfg.get(NAME)
    if b is None or b.method is None:
        return None
    layer_settings(b)
    out = stages(b, steps_per_epoch, float(cfg.train.epochs))
    compression.check_init_from(cfg, NAME)
    return out


def eligible_layers(report: cost.CostReport) -> list[cost.LayerCost]:
    """The conv/dense rows of a cost report, in call order."""
    return [row for row in report.layers if row.type in rules_lib.LAYER_KINDS]


def output_layers(model: Any) -> tuple[str, ...]:
    """The layers whose outputs are the model's outputs (a model's ``output_layers()``, e.g. the
    three ``head{i}`` convs of YOLOv3); ``()`` means the last layer."""
    return tuple(model.output_layers()) if hasattr(model, "output_layers") else ()


def select_layers(report: cost.CostReport, pattern: str | None,
                  kinds: Sequence[str] | None = None,
                  outputs: Sequence[str] = ()) -> list[cost.LayerCost]:
    """The layers to binarize: ``pattern`` (``re.fullmatch`` on the module path; ``None``: every
    conv/dense layer but the first and the output layers — ``outputs``, default the last layer)
    and ``kinds``; ``ValidationError`` when none."""
    rows = eligible_layers(report)
    if pattern is None:
        chosen = [r for r in rows[1:] if r.name not in outputs] if outputs else rows[1:-1]
    else:
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ValidationError(f"binary.layers {pattern!r} is not a valid regular expression "
                                  f"({err})") from None
        chosen = [r for r in rows if regex.fullmatch(r.name)]
    if kinds is not None:
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = [k for k in kinds if k not in rules_lib.LAYER_KINDS]
        if unknown:
            raise ValidationError(f"unknown binary.kinds {unknown}; allowed: "
                                  f"{', '.join(rules_lib.LAYER_KINDS)}")
        chosen = [r for r in chosen if r.type in kinds]
    if not chosen:
        raise ValidationError(f"binary.layers={pattern!r} kinds={kinds!r} matches no layer; the "
                              f"model's layers are: {', '.join(r.name for r in rows)}")
    return chosen


def input_positions(row: cost.LayerCost) -> tuple[int, ...]:
    """The input selection's shape of a layer: (H, W), or (1,) for dense layers."""
    shape = row.input_shape
    return tuple(shape[1:-1]) if shape is not None and len(shape) == 4 else (1,)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    return flax.traverse_util.unflatten_dict(flat, sep="/")


class Binarization(Compression):
    """Binary weights/inputs on selected layers with one :class:`Stages` schedule per member.

    Attributes:
      settings: the static layer settings. layers: the binarized layers' cost rows.
      schedules: one per member. start: variables of a trained run every member starts from.
      weight_clip: latent-weight clip (``None``: off). report: the base model's cost report.
    """

    name = NAME

    def __init__(self, settings: Layers, layers: Sequence[cost.LayerCost],
                 schedules: Sequence[Stages], start: dict[str, Any] | None,
                 weight_clip: float | None, report: cost.CostReport):
        self.settings = settings
        self.layers = tuple(layers)
        self.schedules = tuple(schedules)
        self.start = start
        self.weight_clip = weight_clip
        self.report = report

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(row.name for row in self.layers)

    # --- the interface ------------------------------------------------------------------------
    def transform(self, model):
        if self.settings.activation is not None:
            if not hasattr(model, "activation"):
                raise ValidationError(f"binary.activation={self.settings.activation!r}: "
                                      f"{type(model).__name__} has no activation field; set "
                                      f"binary.activation='model'")
            model = model.clone(activation=self.settings.activation)
        factory = model.layers
        rule = rules_lib.Rule(module_path="|".join(re.escape(p) for p in self.paths),
                              kernel_hook=self.settings.kernel_hook(),
                              input_hook=self.settings.input_hook(),
                              output_hook=self.settings.output_hook(),
                              pad_value=self.settings.pad_value)
        return model.clone(layers=dataclasses.replace(factory, rules=(rule,) + factory.rules))

    def init(self, params):
        out = {}
        for row in self.layers:
            entry = {"weights": jnp.zeros((row.kernel_shape[-1],), jnp.float32)}
            if self.settings.binarizes_inputs:
                entry["inputs"] = jnp.zeros(input_positions(row), jnp.float32)
            out[row.name] = entry
        return out

    def on_start(self, state, tx: optax.GradientTransformation):
        return compression.start_state(state, tx, self.start)

    def collections(self, extra):
        flat = {f"{path}/{field}": value for path, entry in extra.items()
                for field, value in entry.items()}
        return {hooks.COLLECTION: _nest(flat)}

    def wrap(self, tx):
        if self.weight_clip is None:
            return tx
        paths = set(self.paths)

        def mask(params):
            flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params), sep="/")
            return _nest({k: k.rsplit("/", 1)[0] in paths and k.endswith("/kernel")
                          for k in flat})

        return optax.chain(tx, optim.weight_clip(self.weight_clip, mask=mask))

    def before_step(self, access: StateAccess, state, step: int):
        stage = [s.stage_at(step) for s in self.schedules]
        if all(i is None for i in stage):
            return state
        host = access.read({"params": state.params, "binary": state.compression[self.name]})
        new = jax.tree.map(np.array, host["binary"])
        params = flax.traverse_util.flatten_dict(flax.core.unfreeze(host["params"]), sep="/")
        for m, (i, s) in enumerate(zip(stage, self.schedules)):
            if i is None:
                continue
            for index, row in enumerate(self.layers):
                kernel = np.asarray(params[f"{row.name}/kernel"][m])
                current = new[row.name]["weights"][m]
                rng = np.random.default_rng([s.seed, i, index])
                new[row.name]["weights"][m] = _grow(current, kernel, s.weight_ratios[i], s.mode,
                                                    rng)
                if "inputs" in new[row.name]:
                    new[row.name]["inputs"][m] = selection.inputs(input_positions(row),
                                                                  s.input_ratios[i])
        return access.write(state, self.name, new)

    def summary(self, extra, member: int) -> dict[str, Any]:
        """Binarized/float parameters, model size in bits and the binarized MAC shares."""
        ratios = {row.name: (float(np.mean(np.asarray(extra[row.name]["weights"])[member])),
                             float(np.mean(np.asarray(extra[row.name]["inputs"])[member]))
                             if "inputs" in extra[row.name] else 0.0)
                  for row in self.layers}
        return binary_cost(self.report, ratios)


def _grow(current: np.ndarray, kernel: np.ndarray, ratio: float, mode: str,
          rng: np.random.Generator) -> np.ndarray:
    """The next weight selection: stochastic re-draws; deterministic modes keep the channels
    already binary and add to them (chosen once)."""
    fresh = selection.weights(kernel, ratio, mode, rng)
    if mode == "stochastic" or fresh.sum() <= current.sum():
        return fresh
    if mode == "first":
        return fresh
    need = int(fresh.sum() - current.sum())
    error = selection.quantization_error(kernel)
    error[current > 0] = np.inf
    out = current.copy()
    out[np.argsort(error, kind="stable")[:need]] = 1.0
    return out


def binary_cost(report: cost.CostReport, ratios: dict[str, tuple[float, float]]
                ) -> dict[str, Any]:
    """Like larq's ``models.summary``: parameters stored as 1 bit vs 32-bit floats, the model size
    in bits, and the shares of MACs with binary weights and with both operands binary.

    ``ratios``: ``{layer path: (weight ratio, input ratio)}`` of the binarized layers.
    """
    rows = {row.name: row for row in report.layers}
    binary_params = sum(math.prod(rows[p].kernel_shape) * w for p, (w, _) in ratios.items())
    weight_macs = sum(rows[p].macs * w for p, (w, _) in ratios.items())
    both_macs = sum(rows[p].macs * w * a for p, (w, a) in ratios.items())
    total = report.params
    return {"binary_params": int(round(binary_params)),
            "float_params": int(round(total - binary_params)),
            "model_bits": int(round(binary_params + 32 * (total - binary_params))),
            "float_model_bits": 32 * total,
            "binary_weight_macs_share": round(weight_macs / max(report.macs, 1), 4),
            "binary_macs_share": round(both_macs / max(report.macs, 1), 4)}


def from_configs(cfgs: Sequence[ml_collections.ConfigDict], experiment: Any
                 ) -> Binarization | None:
    """The plug-in the members' ``binary`` sections ask for (``None`` when no member binarizes)."""
    sections = [c.get(NAME) for c in cfgs]
    if all(b is None or b.method is None for b in sections):
        return None
    if any(b is None or b.method is None for b in sections):
        raise ValidationError("members of one group must all binarize or none (binary.method)")
    static = {layer_settings(b) for b in sections}
    for field in ("layers", "kinds", "weight_clip"):
        if len({repr(b[field]) for b in sections}) > 1:
            raise ValidationError(f"binary.{field} differs between members of one group")
    if len(static) > 1:
        raise ValidationError("binary method/order/quantizers/pad_value differ between members "
                              "of one group")
    spe = experiment.steps_per_epoch
    schedules = [check(c, spe) for c in cfgs]
    b = sections[0]
    layers = select_layers(experiment.cost, b.layers, b.kinds,
                           output_layers(experiment.base_model))
    start_dir = compression.single_start(sections, NAME)
    return Binarization(static.pop(), layers, schedules,
                        compression.start_from(start_dir) if start_dir is not None else None,
                        None if b.weight_clip is None else float(b.weight_clip), experiment.cost)
