"""Test helper: every real example of a dataset split as un-normalized arrays."""
import numpy as np


def all_examples(ds, split, batch_size):
    """(images, labels) of ``split`` in order, padding dropped, normalization undone."""
    batches = list(ds.batches(split, batch_size, shuffle=False, augment=False,
                              drop_remainder=False, process_index=0, process_count=1))
    mask = np.concatenate([b["mask"] for b in batches])
    x = np.concatenate([b["image"] for b in batches])[mask]
    y = np.concatenate([b["label"] for b in batches])[mask]
    return x * np.asarray(ds.std, np.float32) + np.asarray(ds.mean, np.float32), y
