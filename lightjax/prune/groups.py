"""Channel groups: the sets of filters that must be pruned together, derived by tracing.

A *slot* is one channel position that several producers share: a conv's output channel, the
depthwise conv and BN that follow it, the input channel of every consumer, and the channel of
every other conv tied to it by a residual add or an SE product. A *group* is a connected set of
producers with all their slots; it has one mask (one entry per slot) and is named after its first
prunable layer (``'unit13/pw'``). Groups are computed from :func:`lightjax.prune.trace
.trace_channels`, never from a per-model table.

A group is *prunable* when it contains one of the model's ``prunable_layers()`` and compaction
reproduces the masked network exactly. :func:`derive` checks the latter by tracing a compact model
with random slots removed from every candidate group and comparing its channel map with the
masked one; groups whose channels pass through position-dependent operations (ShuffleNet's channel
split and shuffle of the stage outputs, grouped convolutions' partitions, SE widths derived from the
channel count) fail and are reported with the reason.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import flax.linen as nn
import numpy as np

from lightjax.prune import trace as trace_lib
from lightjax.errors import ValidationError

Array = Any


@dataclasses.dataclass(frozen=True)
class Group:
    """One channel group.

    Attributes:
      name: its first prunable layer (``'unit13/pw'``), else its first producer's path.
      size: number of slots (channels) the mask covers.
      producers: paths of the non-depthwise layers whose outputs are these slots.
      layers: the model's prunable layers (``prunable_layers()`` names) in the group.
      prunable: whether masks of this group may prune anything.
      reason: why not, when not prunable.
      step: kept channel counts must change in multiples of this (the model's width rules).
    """

    name: str
    size: int
    producers: tuple[str, ...]
    layers: tuple[str, ...]
    prunable: bool
    reason: str = ""
    step: int = 1


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _layer_name(path: str, prunable: Sequence[str]) -> str | None:
    for name in prunable:
        if path == name or path == f"{name}/conv":
            return name
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelGroups:
    """The channel groups of one model configuration (static: holds only numpy index tables).

    Attributes:
      model_name: the model's class name (masks from another architecture are rejected).
      prunable_layers: the model's ``prunable_layers()``.
      groups: every group, in trace order.
      slot_of_id: channel id -> global slot index (``-1``: the id belongs to no group).
      inputs: module path -> per input channel, the global slot index (``-1``: none).
      outputs: layer path -> per output channel, the global slot index.
      kinds: layer path -> layer kind.
      widths: the traced model's widths (``prunable_layers()`` order).
    """

    model_name: str
    prunable_layers: tuple[str, ...]
    groups: tuple[Group, ...]
    offsets: tuple[int, ...]  # first global slot of each group
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]
    kinds: Mapping[str, str]
    widths: tuple[int, ...]

    # --- lookup -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def prunable(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.prunable)

    def __getitem__(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name or name in g.layers:
                return g
        raise KeyError(self._unknown(name))

    def _unknown(self, name: str) -> str:
        return (f"no channel group or prunable layer named {name!r}; prunable groups: "
                f"{', '.join(g.name for g in self.prunable) or '(none)'}")

    def check_name(self, name: str) -> Group:
        """The group ``name`` (a group name or a prunable layer in it); ``ValueError`` if none."""
        try:
            return self[name]
        except KeyError:
            raise ValidationError(self._unknown(name)) from None

    def select(self, names: Sequence[str]) -> list[Group]:
        """The groups that ``names`` select, in model order: each name is a group, a prunable
        layer in one, or a module-path prefix (``'backbone'`` selects every group with a layer
        under ``backbone/``); ``ValueError`` for a name that selects nothing."""
        chosen: set[str] = set()
        for name in names:
            hits = [g.name for g in self.groups if _selects(name, g.name, g.layers)]
            if not hits:
                raise ValidationError(self._unknown(name))
            chosen.update(hits)
        return [g for g in self.groups if g.name in chosen]

    def index(self, name: str) -> int:
        return self.names.index(self[name].name)

    def slots(self, name: str) -> slice:
        i = self.index(name)
        return slice(self.offsets[i], self.offsets[i] + self.groups[i].size)

    @property
    def num_slots(self) -> int:
        return self.offsets[-1] + self.groups[-1].size if self.groups else 0

    def group_of_slot(self) -> np.ndarray:
        """(num_slots,) group index of each global slot."""
        return np.repeat(np.arange(len(self.groups)), [g.size for g in self.groups])

    def ones(self) -> dict[str, np.ndarray]:
        """Group masks that keep everything: ``{group name: ones(size)}`` (float32)."""
        return {g.name: np.ones(g.size, np.float32) for g in self.groups}

    def leaf_axes(self, key: str, shape: Sequence[int]) -> tuple[tuple[int, np.ndarray], ...]:
        """The channel axes of the variable ``key`` (``'<module path>/<name>'``) of ``shape``:
        ``(axis, global slot per index)`` pairs (slot ``-1``: the index belongs to no group).

        A layer's kernel: output channels (last axis) and, unless depthwise or grouped, input
        channels (second to last); its bias: output channels. Any other module's variable whose
        last axis has the module's input channel count (BN scale/bias/statistics, learnable
        activation parameters): its input channels.
        """
        module, name = key.rsplit("/", 1) if "/" in key else ("", key)
        rank, kind = len(shape), self.kinds.get(module)
        if kind is not None:
            outs = self.outputs[module]
            if name == "kernel":
                ins = self.inputs[module]
                if kind != "depthwise" and rank >= 2 and shape[-2] == len(ins):
                    return (rank - 1, outs), (rank - 2, ins)
                return ((rank - 1, outs),)
            return ((rank - 1, outs),) if rank and shape[-1] == len(outs) else ()
        ins = self.inputs.get(module)
        return ((rank - 1, ins),) if ins is not None and rank and shape[-1] == len(ins) else ()

    def describe(self) -> str:
        """A table of the groups: name, channels, layers, prunable / why not."""
        rows = [f"{'group':<28} {'channels':>8} {'step':>4}  status"]
        for g in self.groups:
            status = "prunable" if g.prunable else f"fixed: {g.reason}"
            rows.append(f"{g.name:<28} {g.size:>8} {g.step:>4}  {status}")
        return "\n".join(rows)


def _build(model: nn.Module, tr: trace_lib.ChannelTrace) -> tuple[list[dict], np.ndarray]:
    """Slots and groups (before the prunability checks) from a channel trace."""
    uf = _UnionFind(tr.num_ids)
    for rec in tr.layers:
        if rec.kind == "depthwise":  # a depthwise conv's channel c *is* its input channel c
            for c, ids in enumerate(tr.inputs[rec.path]):
                for i in ids:
                    uf.union(rec.first_id + c, i)
    for chans in tr.inputs.values():  # ids meeting in one channel (add, product) are tied
        for ids in chans:
            for i in ids[1:]:
                uf.union(ids[0], i)
    root = np.array([uf.find(i) for i in range(tr.num_ids)])
    # producers sharing a slot are one group
    producers = [rec for rec in tr.layers if rec.kind != "depthwise"]
    pf = _UnionFind(len(producers))
    first_by_root: dict[int, int] = {}
    for p, rec in enumerate(producers):
        for c in range(rec.out_channels):
            r = root[rec.first_id + c]
            if r in first_by_root:
                pf.union(first_by_root[r], p)
            else:
                first_by_root[r] = p
    members: dict[int, list[int]] = {}
    for p in range(len(producers)):
        members.setdefault(pf.find(p), []).append(p)
    prunable = tuple(model.prunable_layers()) if hasattr(model, "prunable_layers") else ()
    groups = []
    for p_list in members.values():
        recs = [producers[p] for p in p_list]
        slot_roots = sorted({int(root[rec.first_id + c]) for rec in recs
                             for c in range(rec.out_channels)})
        names = tuple(n for n in (_layer_name(r.path, prunable) for r in recs) if n)
        groups.append(dict(name=names[0] if names else recs[0].path, roots=slot_roots,
                           producers=tuple(r.path for r in recs), layers=names))
    groups.sort(key=lambda g: g["roots"][0])
    return groups, root


def _tables(tr: trace_lib.ChannelTrace, groups: list[dict], root: np.ndarray):
    slot_of_root: dict[int, int] = {}
    offsets = []
    for g in groups:
        offsets.append(len(slot_of_root))
        for r in g["roots"]:
            slot_of_root[r] = len(slot_of_root)
    slot_of_id = np.array([slot_of_root.get(int(r), -1) for r in root], np.int64)
    inputs = {p: np.array([slot_of_id[ids[0]] if ids else -1 for ids in chans], np.int64)
              for p, chans in tr.inputs.items()}
    outputs = {rec.path: slot_of_id[rec.first_id:rec.first_id + rec.out_channels]
               for rec in tr.layers}
    return offsets, slot_of_id, inputs, outputs


def _selects(name: str, group: str, layers: Sequence[str]) -> bool:
    """Whether ``name`` (a group, a layer or a module-path prefix) selects this group."""
    prefix = name.rstrip("/") + "/"
    return name == group or name in layers or group.startswith(prefix) or \
        any(layer.startswith(prefix) for layer in layers)


def derive(model: nn.Module, input_shape: Sequence[int] = (1, 8, 8, 3), *,
           skip: Sequence[str] = (), skip_first: bool = True, check: bool = True,
           seed: int = 0) -> ChannelGroups:
    """Channel groups of ``model`` (a lightjax model or any flax model built from lightjax layers).

    Args:
      input_shape: NHWC shape to trace with; only its channel count and validity matter (the
        default 8x8 works for every lightjax model; pass the real channel count).
      skip: prunable layers / groups to keep whole, or module-path prefixes (``'backbone'``
        keeps every group with a layer under ``backbone/``); ``ValueError`` for unknown names.
      skip_first: keep the group of the network's first convolution whole (the sources never
        prune it).
      check: verify by tracing a compact model that compaction reproduces the masked network
        (one more trace per round; disable only for speed when the model is known to pass).
    """
    tr = _trace(trace_lib.strip_hooks(model), tuple(int(d) for d in input_shape))
    raw, root = _build(model, tr)
    offsets, _, inputs, outputs = _tables(tr, raw, root)
    kinds = {rec.path: rec.kind for rec in tr.layers}
    widths = tuple(model.resolved_widths()) if hasattr(model, "resolved_widths") else ()
    first = tr.layers[0].path
    status: dict[str, tuple[bool, str]] = {}
    by_path_groups = {rec.path: rec.groups for rec in tr.layers}
    for g in raw:
        if not g["layers"]:
            status[g["name"]] = (False, "no prunable layer of the model in it (its width "
                                        "follows the architecture)")
        elif skip_first and first in g["producers"]:
            status[g["name"]] = (False, "contains the first convolution (skip_first)")
        else:
            status[g["name"]] = (True, "")
    for name in skip:
        hits = [g for g in raw if _selects(name, g["name"], g["layers"])]
        if not hits:
            raise ValidationError(f"skip: no prunable layer, group or module path prefix named "
                                  f"{name!r}; known: "
                                  f"{', '.join(sorted(g['name'] for g in raw if g['layers']))}")
        for g in hits:
            status[g["name"]] = (False, "skipped by the user")
    # grouped convolutions: their partitions must stay equal-sized (not supported yet)
    for gi, g in enumerate(raw):
        lo, hi = offsets[gi], offsets[gi] + len(g["roots"])
        for path, table in list(inputs.items()) + list(outputs.items()):
            if by_path_groups.get(path, 1) > 1 and kinds.get(path) != "depthwise" and \
                    np.any((table >= lo) & (table < hi)) and status[g["name"]][0]:
                status[g["name"]] = (False, f"feeds or leaves the grouped convolution {path} "
                                            f"(equal-sized groups are not maintained)")
    steps = {g["name"]: 1 for g in raw}
    if check and hasattr(model, "resolved_widths"):
        _check_compaction(model, tr, raw, root, offsets, inputs, outputs, status, steps,
                          input_shape, seed)
    groups = tuple(Group(g["name"], len(g["roots"]), g["producers"], g["layers"],
                         *status[g["name"]], step=steps[g["name"]]) for g in raw)
    return ChannelGroups(type(model).__name__,
                         tuple(model.prunable_layers()) if hasattr(model, "prunable_layers")
                         else (), groups, tuple(offsets), inputs, outputs, kinds, widths)


@functools.lru_cache(maxsize=32)
def _trace(model: nn.Module, input_shape: tuple[int, ...]) -> trace_lib.ChannelTrace:
    return trace_lib.trace_channels(model, input_shape)


def widths_for(model: nn.Module, outputs: Mapping[str, np.ndarray],
               kept_slots: np.ndarray) -> tuple[int, ...]:
    """Per prunable layer, the number of its output channels whose slot is kept."""
    names = model.prunable_layers()
    current = model.resolved_widths()
    widths = []
    for name, width in zip(names, current):
        path = next((p for p in outputs if p in (name, f"{name}/conv")), None)
        if path is None:
            widths.append(width)
            continue
        slots = outputs[path]
        widths.append(int(np.sum(kept_slots[slots])) if len(slots) else width)
    return tuple(widths)


def _check_compaction(model, tr, raw, root, offsets, inputs, outputs, status, steps,
                      input_shape, seed) -> None:
    """Mark groups non-prunable where a compact model's channel map differs from the masked one."""
    rng = np.random.default_rng(seed)
    num_slots = offsets[-1] + len(raw[-1]["roots"])
    for _ in range(4):
        candidates = [i for i, g in enumerate(raw) if status[g["name"]][0]]
        if not candidates:
            return
        kept = np.ones(num_slots, bool)
        for i in candidates:
            g = raw[i]
            size = len(g["roots"])
            step = _find_step(model, outputs, offsets[i], size, num_slots, status, g)
            if step is None:
                continue
            steps[g["name"]] = step
            drop = rng.choice(size, size=step, replace=False)
            kept[offsets[i] + drop] = False
        candidates = [i for i in candidates if status[raw[i]["name"]][0]]
        try:
            compact = model.clone(widths=widths_for(model, outputs, kept))
        except ValueError:  # the combination breaks a width rule: test groups one by one
            for i in candidates:
                one = np.ones(num_slots, bool)
                one[offsets[i]:offsets[i] + steps[raw[i]["name"]]] = False
                try:
                    model.clone(widths=widths_for(model, outputs, one))
                except ValueError as err:
                    status[raw[i]["name"]] = (False, f"compact widths rejected: {err}")
            if all(not status[raw[i]["name"]][0] for i in candidates):
                return
            continue
        ctr = _trace(trace_lib.strip_hooks(compact), tuple(int(d) for d in input_shape))
        bad = _compare(tr, ctr, root, kept, inputs, outputs, offsets, raw)
        if not bad:
            return
        for i, why in bad.items():
            if status[raw[i]["name"]][0]:
                status[raw[i]["name"]] = (False, why)


def _find_step(model, outputs, offset, size, num_slots, status, g) -> int | None:
    for step in (1, 2, 3, 4, 8, 16):
        if step >= size:
            break
        kept = np.ones(num_slots, bool)
        kept[offset + size - step:offset + size] = False
        try:
            model.clone(widths=widths_for(model, outputs, kept))
            return step
        except ValueError:
            continue
    status[g["name"]] = (False, "no smaller width is accepted by the model's width rules")
    return None


def _compare(tr, ctr, root, kept, inputs, outputs, offsets, raw) -> dict[int, str]:
    """Group index -> reason, for groups whose channels the compact model maps differently."""
    slot_group = np.repeat(np.arange(len(raw)), [len(g["roots"]) for g in raw])

    def groups_in(table):
        return {int(slot_group[s]) for s in table if s >= 0}

    # compact id -> full slot (each compact layer's channels are the kept ones, in order)
    comp_slot = np.full(ctr.num_ids, -2, np.int64)
    bad: dict[int, str] = {}
    for rec in tr.layers:
        full = outputs[rec.path]
        keep = np.array([s < 0 or kept[s] for s in full], bool)
        try:
            crec = ctr.layer(rec.path)
        except KeyError:
            for gi in groups_in(inputs.get(rec.path, [])) | groups_in(full):
                bad.setdefault(gi, f"compact model has no layer {rec.path}")
            continue
        if crec.out_channels != keep.sum():
            why = (f"{rec.path} would have {crec.out_channels} channels in the compact model, "
                   f"{keep.sum()} are kept in the masked one (its width follows another)")
            for gi in groups_in(inputs.get(rec.path, [])) | groups_in(full):
                bad.setdefault(gi, why)
            continue
        comp_slot[crec.first_id:crec.first_id + crec.out_channels] = full[keep]
    for path, table in inputs.items():
        expected = [int(s) for s in table if s < 0 or kept[s]]
        chans = ctr.inputs.get(path)
        got = None if chans is None else [int(comp_slot[ids[0]]) if ids else -1 for ids in chans]
        if got != expected:
            why = f"channel order at {path} changes when channels are removed"
            for gi in groups_in(table):
                bad.setdefault(gi, why)
    return bad
