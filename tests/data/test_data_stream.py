"""Streamed shapes (``mode='stream'``): every epoch's scenes are a pure function of
(seed, epoch, index), the same in another process, after a resume and for any process split."""
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from lightjax.data import shapes
from lightjax.errors import ValidationError

ONE = dict(process_index=0, process_count=1)


def digest(arrays):
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def test_an_epoch_is_a_function_of_seed_epoch_and_index():
    a = shapes.generate_epoch("scenes", "medium", 3, 300, 0, 32)
    shapes.generate_epoch.cache_clear()
    again = shapes.generate_epoch("scenes", "medium", 3, 300, 0, 32)
    assert digest(a) == digest(again)
    prefix = shapes.generate_epoch("scenes", "medium", 3, 40, 0, 32)  # n does not matter
    assert all(np.array_equal(prefix[k], a[k][:40]) for k in a)
    other = shapes.generate_epoch("scenes", "medium", 4, 300, 0, 32)
    seed = shapes.generate_epoch("scenes", "medium", 3, 300, 1, 32)
    fixed = shapes.generate("scenes", "medium", "train", 300, 0, 32)
    for b in (other, seed, fixed):
        assert not np.array_equal(a["images"], b["images"])
        assert (a["masks"] != b["masks"]).mean() > 0.05


def test_another_process_draws_the_same_epoch():
    code = ("import hashlib, numpy as np, sys; sys.path.insert(0, 'tests/data');"
            "from test_data_stream import digest; from lightjax.data import shapes;"
            "print(digest(shapes.generate_epoch('scenes', 'medium', 3, 300, 0, 32)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()[-1]
    assert out == digest(shapes.generate_epoch("scenes", "medium", 3, 300, 0, 32))


def test_batches_stream_fresh_scenes_and_resume_and_split_exactly():
    ds = shapes.build(32, mode="stream", epoch_size=96, test_size=16)
    assert "96 fresh train scenes per epoch" in ds.description
    assert ds.size("train") == 96 and ds.steps_per_epoch("train", 32) == 3
    epochs = [list(ds.batches("train", 32, epoch=e, **ONE)) for e in (0, 1)]
    # an epoch's batches hold exactly that epoch's scenes (shuffled), and epochs differ
    for e in (0, 1):
        masks = np.concatenate([b["mask"] for b in ds.batches("train", 32, epoch=e,
                                                              augment=False, **ONE)])
        drawn = shapes.generate_epoch("scenes", "medium", e, 96, 0, 32)["masks"].astype(np.int32)
        assert sorted(m.tobytes() for m in masks) == sorted(m.tobytes() for m in drawn)
    assert not np.array_equal(epochs[0][0]["image"], epochs[1][0]["image"])
    # resume inside an epoch, and a two-process split of the global batch
    resumed = list(ds.batches("train", 32, epoch=1, start_batch=2, **ONE))
    assert all(np.array_equal(resumed[0][k], epochs[1][2][k]) for k in resumed[0])
    halves = [list(ds.batches("train", 32, epoch=1, process_index=p, process_count=2))
              for p in (0, 1)]
    for b, (lo, hi) in enumerate(zip(*halves)):
        for key in ("image", "mask"):
            assert np.array_equal(np.concatenate([lo[key], hi[key]]), epochs[1][b][key])
    # the test split is the fixed one, whatever the mode
    fixed = shapes.build(32, train_size=96, test_size=16)
    assert np.array_equal(next(ds.batches("test", 16, **ONE))["mask"],
                          next(fixed.batches("test", 16, **ONE))["mask"])


@pytest.mark.parametrize("kwargs,message", [
    (dict(mode="online"), "shapes: mode must be one of fixed, stream (data.mode), got 'online'"),
    (dict(mode="stream", train_size=100), "mode='stream' draws epoch_size fresh scenes"),
    (dict(epoch_size=100), "epoch_size is for mode='stream'"),
    (dict(mode="stream", epoch_size=0), "shapes: epoch_size must be an integer >= 1, got 0"),
])
def test_bad_mode_settings_are_one_line(kwargs, message):
    with pytest.raises(ValidationError) as err:
        shapes.build(32, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
