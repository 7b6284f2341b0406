"""Use lightjax modules in your own JAX project: a lightjax MobileNetV1 trained by a plain optax
loop you write yourself, structurally pruned inside that loop, then compacted to a smaller model.

    python examples/own_loop.py              # 300 steps on scikit-learn's digits, ~1 min on a CPU
    python examples/own_loop.py --steps 60   # a quick look

What it uses from lightjax (nothing else: no configs, no run directories, no CLI):

- ``lightjax.models.create``: a MobileNetV1 (alpha 0.25, 1-channel 16x16 inputs) as a
  ``flax.linen`` module; ``lightjax.cost.count``: its parameters and multiply-adds;
- ``lightjax.prune.groups.derive``: the channel groups (filters that must go together);
- ``lightjax.prune.ranking``: L1 scores and the channels to drop (``select``);
- ``lightjax.prune.masking``: the masked model and the masks (``masked``, ``apply``,
  ``layer_masks``, ``param_masks``); ``lightjax.prune.optim.masked_updates``: an optax wrapper
  that keeps pruned weights and their Adam moments at zero;
- ``lightjax.prune.compact.compact``: the same model class with the pruned channels removed,
  computing what the masked model computes.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lightjax
from lightjax.prune import compact, groups, masking, optim, ranking

RESOLUTION = 16
BATCH = 64


def load_digits(resolution: int = RESOLUTION) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits (bundled, offline) as (x_train, y_train, x_test, y_test):
    NHWC float32 images upscaled to ``resolution`` (a multiple of 8), standardized; int32
    labels."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = digits.images.astype(np.float32)[..., None] / 16.0
    scale = resolution // 8  # nearest-neighbour upscaling
    x = x.repeat(scale, axis=1).repeat(scale, axis=2)
    x = (x - x[:1400].mean()) / x[:1400].std()
    y = digits.target.astype(np.int32)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def main(steps: int = 300, prune_at: tuple[int, ...] | None = None, ratios=(0.25, 0.5),
         seed: int = 0, log=print) -> dict:
    """Train for ``steps`` steps, pruning to ``ratios[i]`` of every prunable group's filters at
    step ``prune_at[i]`` (default: after 1/3 and 2/3 of the steps); returns the figures."""
    start = time.time()
    prune_at = prune_at or (steps // 3, 2 * steps // 3)
    x_train, y_train, x_test, y_test = load_digits()
    model = lightjax.models.create("mobilenet_v1", num_classes=10, alpha=0.25, stem_stride=1,
                                   input_channels=1)
    shape = (1, RESOLUTION, RESOLUTION, 1)
    g = groups.derive(model, shape)  # which filters go together; fixed groups stay whole
    net = masking.masked(model)      # every layer multiplies its inputs by the `masks` collection
    variables = jax.jit(net.init, static_argnames="train")(jax.random.PRNGKey(seed),
                                                          jnp.zeros(shape), train=False)
    params, batch_stats = variables["params"], variables["batch_stats"]
    tx = optim.masked_updates(optax.adam(3e-3))  # pruned weights and their moments stay 0
    opt_state = tx.init(params)

    @jax.jit
    def prune_to(params, group_masks):
        """Params with pruned entries zeroed, the `masks` collection, per-parameter masks."""
        pruned = masking.apply({"params": params}, g, group_masks)
        return pruned["params"], pruned["masks"], masking.param_masks(g, group_masks, params)

    @jax.jit
    def train_step(params, batch_stats, opt_state, masks, param_masks, x, y):
        def loss_fn(p):
            logits, updates = net.apply({"params": p, "batch_stats": batch_stats, "masks": masks},
                                        x, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        step_updates, opt_state = tx.update(grads, opt_state, params, param_masks=param_masks)
        return optax.apply_updates(params, step_updates), updates["batch_stats"], opt_state, loss

    group_masks = g.ones()  # {group: (channels,) 0/1}: the whole pruning state, a pytree
    params, masks, param_masks = prune_to(params, group_masks)
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        if step in prune_at:  # prune inside the loop: the L1-smallest filters of every group
            scores = ranking.scores(g, {"params": params}, "l1")
            group_masks = ranking.select(g, group_masks, scores, ratios[prune_at.index(step)])
            params, masks, param_masks = prune_to(params, group_masks)
            log(f"step {step}: pruned {100 * ranking.sparsity(g, group_masks):.0f}% of the "
                f"prunable filters")
        idx = rng.choice(len(x_train), BATCH, replace=False)
        params, batch_stats, opt_state, loss = train_step(
            params, batch_stats, opt_state, masks, param_masks, x_train[idx], y_train[idx])
        losses.append(float(loss))
        if step % 50 == 0 or step == steps - 1:
            log(f"step {step}: loss {losses[-1]:.3f}")

    variables = {"params": params, "batch_stats": batch_stats, "masks": masks}
    small, small_vars = compact.compact(net, variables, g, group_masks, shape)  # widths shrink
    masked_logits = jax.jit(net.apply)(variables, x_test)  # eval mode: running BN statistics
    small_logits = jax.jit(small.apply)(small_vars, x_test)
    result = {
        "losses": losses,
        "accuracy": float((masked_logits.argmax(-1) == y_test).mean()),
        "compact_accuracy": float((small_logits.argmax(-1) == y_test).mean()),
        "max_logit_difference": float(jnp.max(jnp.abs(masked_logits - small_logits))),
        "params": lightjax.cost.count(model, shape).params,
        "compact_params": lightjax.cost.count(small, shape).params,
        "compact_widths": small.widths, "seconds": time.time() - start,
    }
    log(f"test accuracy {100 * result['accuracy']:.2f}% (compact model "
        f"{100 * result['compact_accuracy']:.2f}%); params {result['params']:,} -> "
        f"{result['compact_params']:,}; max |masked - compact| logit "
        f"{result['max_logit_difference']:.2e}; {result['seconds']:.0f} s")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
