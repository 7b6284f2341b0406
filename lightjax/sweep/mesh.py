"""Laying sweep members and their batches out on devices and hosts.

A group of K members trains on a ``('sweep', 'data')`` :class:`jax.sharding.Mesh` over every
device of every process: ``sweep = gcd(K, devices)`` devices split the members, the remaining
``data = devices / sweep`` split each batch. Train state leaves (leading member axis) are sharded
``P('sweep')``; a batch shared by all members is ``P('data')``, per-member batches (K, B, ...) are
``P('sweep', 'data')``. Each process loads only the rows and members its own devices hold and
assembles the global array with :func:`jax.make_array_from_process_local_data`, so the same
program runs unchanged on 1 CPU, 4 host devices, several hosts or a TPU pod slice.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from lightjax.errors import ValidationError

AXES = ("sweep", "data")


def member_mesh(members: int, batch_size: int,
                devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The ``('sweep', 'data')`` mesh for ``members`` members with a global ``batch_size``."""
    devices = np.asarray(jax.devices() if devices is None else devices)
    sweep = math.gcd(members, devices.size)
    data = devices.size // sweep
    if batch_size % data:
        raise ValidationError(f"train.batch_size={batch_size} must be divisible by the {data} devices "
                         f"of the mesh's data axis ({devices.size} devices, {members} members)")
    return Mesh(devices.reshape(sweep, data), AXES)


def local_block(sharding: NamedSharding, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """This process's part of a global array of ``shape``: one contiguous slice per dimension."""
    indices = list(sharding.addressable_devices_indices_map(shape).values())
    block = []
    for dim, size in enumerate(shape):
        ranges = [index[dim].indices(size)[:2] for index in indices]
        block.append(slice(min(r[0] for r in ranges), max(r[1] for r in ranges)))
    return tuple(block)


def row_partition(rows: slice, total: int) -> tuple[int, int]:
    """``(process_index, process_count)`` arguments of ``Dataset.batches`` that yield the batch
    rows ``rows`` of a global batch of ``total`` rows."""
    size = rows.stop - rows.start
    if total % size or rows.start % size:
        raise ValidationError(f"rows {rows.start}:{rows.stop} of {total} are not an equal partition")
    return rows.start // size, total // size


def replicated(mesh: Mesh, value: Any) -> jax.Array:
    """``value`` (the same on every process) as an array replicated over ``mesh``."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, NamedSharding(mesh, P()),
                                        lambda index: value[index])


def per_member(mesh: Mesh, value: Any) -> jax.Array:
    """``value`` (leading member axis, the same on every process) sharded over ``'sweep'``."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, NamedSharding(mesh, P("sweep")),
                                        lambda index: value[index])
