"""Filter criteria on hand-made kernels, and mask-aware selection."""
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.prune import criteria


def kernel_from_filters(filters):
    """(Cout, 2, 2, 1) filters -> HWIO (2, 2, 1, Cout)."""
    return jnp.moveaxis(jnp.asarray(filters, jnp.float32), 0, -1)


FILTERS = [[[[1.0], [0.0]], [[0.0], [0.0]]],      # one weight 1
           [[[-2.0], [2.0]], [[0.0], [0.0]]],     # two weights of magnitude 2
           [[[3.0], [0.0]], [[0.0], [4.0]]]]      # 3 and 4


def test_l0_l1_l2():
    k = kernel_from_filters(FILTERS)
    np.testing.assert_allclose(criteria.l0(k), [1, 2, 2])
    np.testing.assert_allclose(criteria.l1(k), [1, 4, 7])
    np.testing.assert_allclose(criteria.l2(k), [1, np.sqrt(8), 5], rtol=1e-6)


def test_fpgm_is_the_sum_of_distances_to_the_other_filters():
    f = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])  # dense kernel (Cin=2, Cout=3)
    scores = criteria.fpgm(jnp.asarray(f.T))
    np.testing.assert_allclose(scores, [1 + 10, 1 + 9, 10 + 9], rtol=1e-6)
    # the filter nearest the geometric median (the middle one) is pruned first
    assert int(np.argmin(scores)) == 1


def test_bn_gamma_uses_magnitude():
    np.testing.assert_allclose(criteria.bn_gamma(jnp.array([-3.0, 0.5, 2.0])), [3, 0.5, 2])
    with pytest.raises(ValueError, match="scale vector"):
        criteria.bn_gamma(jnp.ones((2, 2)))


def test_select_never_reselects_pruned_channels():
    scores = jnp.array([0.1, 5.0, 0.2, 3.0, 4.0])
    mask = jnp.array([1.0, 0.0, 1.0, 1.0, 1.0])  # channel 1 already pruned despite its score
    new = criteria.select(scores, mask, keep=2)
    np.testing.assert_array_equal(new, [0, 0, 0, 1, 1])
    assert float(new[1]) == 0.0
    # asking to keep more than are active keeps exactly the active ones
    np.testing.assert_array_equal(criteria.select(scores, mask, keep=5), mask)


def test_select_ties_keep_the_lower_index():
    np.testing.assert_array_equal(criteria.select(jnp.ones(4), jnp.ones(4), 2), [1, 1, 0, 0])


@pytest.mark.parametrize("channels,ratio,round_to,kept", [
    (64, 0.5, 1, 32), (64, 0.3, 1, 45), (64, 0.3, 8, 48), (10, 0.95, 8, 8), (5, 0.0, 8, 5),
    (1024, 0.25, 8, 768),
])
def test_kept_count_rounds_up_to_multiples(channels, ratio, round_to, kept):
    assert criteria.kept_count(channels, ratio, round_to) == kept


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_unit_interval_is_rejected(ratio):
    with pytest.raises(ValueError, match=r"ratio must be in \[0, 1\)"):
        criteria.kept_count(10, ratio)


def test_bad_names_and_zero_keep():
    with pytest.raises(ValueError, match="unknown pruning criterion 'l3'"):
        criteria.get("l3")
    with pytest.raises(ValueError, match="at least 1 must stay"):
        criteria.select(jnp.ones(3), jnp.ones(3), 0)
