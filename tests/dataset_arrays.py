"""Test helper: every real example of a dataset split as un-normalized arrays."""
import numpy as np


def all_fields(ds, split, batch_size):
    """Every field of ``split`` in stored order (a dict), padding rows (``valid`` False) dropped,
    image normalization undone."""
    batches = list(ds.batches(split, batch_size, shuffle=False, augment=False,
                              drop_remainder=False, process_index=0, process_count=1))
    valid = np.concatenate([b["valid"] for b in batches])
    out = {key: np.concatenate([b[key] for b in batches])[valid] for key in batches[0]}
    out["image"] = out["image"] * np.asarray(ds.std, np.float32) + np.asarray(ds.mean, np.float32)
    return out


def all_examples(ds, split, batch_size):
    """(images, labels) of ``split`` in order, padding dropped, normalization undone."""
    out = all_fields(ds, split, batch_size)
    return out["image"], out["label"]
