"""Loss and eval-step arithmetic: label smoothing, masked top-1/top-5 sums."""
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.train import step as step_lib


def test_cross_entropy_with_label_smoothing_matches_closed_form():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    logp = logits - jnp.log(jnp.exp(logits).sum())
    plain = step_lib.cross_entropy(logits, jnp.array([0]), 3)
    assert float(plain[0]) == pytest.approx(float(-logp[0, 0]), rel=1e-6)
    smooth = step_lib.cross_entropy(logits, jnp.array([0]), 3, label_smoothing=0.3)
    targets = np.array([0.7 + 0.1, 0.1, 0.1])
    assert float(smooth[0]) == pytest.approx(float(-(targets * logp[0]).sum()), rel=1e-6)


def test_eval_step_counts_only_real_examples():
    class Fixed:
        def apply(self, variables, x, train):
            return x  # the "images" are the logits

    logits = jnp.array([[0.0, 1, 2, 3, 4, 5, 6],    # label 6: top-1 hit
                        [6.0, 5, 4, 3, 2, 1, 0],    # label 4: top-5 hit only
                        [6.0, 5, 4, 3, 2, 1, 0],    # label 6: miss
                        [0.0, 0, 0, 0, 0, 0, 9]])   # padding row (mask False)
    batch = {"image": logits, "label": jnp.array([6, 4, 6, 6]),
             "mask": jnp.array([True, True, True, False])}
    state = step_lib.TrainState(step=0, params={}, batch_stats={}, opt_state=None, rng=None)
    sums = step_lib.make_eval_step(Fixed(), 7)(state, batch)
    assert float(sums["count"]) == 3
    assert float(sums["top1"]) == 1 and float(sums["top5"]) == 2
