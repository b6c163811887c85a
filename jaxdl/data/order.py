"""The order of examples in an epoch: one definition, computed alike by numpy and by jax.

An epoch's order is a permutation fixed by (seed, epoch): every example gets
a 32-bit key from an integer hash of (seed, epoch, index), and the stable
sort of the keys is the order. The hash uses only uint32 arithmetic that
numpy and jax.numpy compute identically, so the host pipeline (numpy) and the
device-resident path (jax, inside a compiled step) see exactly the same
examples in the same order, and a resumed run sees the order it would have.

Each of `shard_count` hosts takes every `shard_count`-th position of the
global order (so the shards are disjoint and cover the split), and every
host runs the same number of steps: a host whose shard is one example short
pads its last batch, with mask 0.
"""

import numpy as np

_GOLDEN = 0x9E3779B9


def _mix(x, xp):
    # "lowbias32" (C. Wellons): a 32-bit finaliser with good avalanche.
    x = x ^ (x >> xp.uint32(16))
    x = x * xp.uint32(0x7FEB352D)
    x = x ^ (x >> xp.uint32(15))
    x = x * xp.uint32(0x846CA68B)
    return x ^ (x >> xp.uint32(16))


def permutation(num_examples: int, *, seed, epoch, xp=np):
    """The epoch's permutation of `range(num_examples)`, with numpy (`xp=np`) or jax.numpy.

    `seed` and `epoch` may be traced jax integers when `xp` is jax.numpy.
    """
    # Shape (1,), not a scalar: numpy warns on the (intended) wrap-around of scalar products.
    seed = xp.asarray(seed).astype(xp.uint32).reshape(1)
    epoch = xp.asarray(epoch).astype(xp.uint32).reshape(1)
    salt = _mix(seed ^ _mix(epoch + xp.uint32(_GOLDEN), xp), xp)
    keys = _mix(xp.arange(num_examples, dtype=xp.uint32) * xp.uint32(_GOLDEN) ^ salt, xp)
    return xp.argsort(keys, stable=True).astype(xp.int32)


def steps_per_epoch(num_examples: int, batch_size: int, *, shard_count: int = 1, drop_remainder: bool = False) -> int:
    """Steps each host runs in an epoch: the largest shard, in batches, under the remainder policy."""
    if drop_remainder:
        return (num_examples // shard_count) // batch_size
    return -(-(-(-num_examples // shard_count)) // batch_size)


def epoch_indices(
    num_examples: int,
    batch_size: int,
    *,
    seed,
    epoch,
    shuffle: bool = True,
    drop_remainder: bool = False,
    shard_index: int = 0,
    shard_count: int = 1,
    xp=np,
):
    """Which examples each step of an epoch reads on this host.

    Returns:
      (indices, mask), both (steps, batch_size): example indices into the
      split, and 1.0 for real examples, 0.0 for padding (which repeats a real
      index so that reading it is always valid).
    """
    order = permutation(num_examples, seed=seed, epoch=epoch, xp=xp) if shuffle else xp.arange(num_examples, dtype=xp.int32)
    mine = order[shard_index::shard_count]
    steps = steps_per_epoch(num_examples, batch_size, shard_count=shard_count, drop_remainder=drop_remainder)
    total = steps * batch_size
    real = min(total, int(mine.shape[0]))
    padding = total - real
    indices = xp.concatenate([mine[:real], xp.broadcast_to(mine[:1], (padding,))]) if padding else mine[:real]
    mask = xp.concatenate([xp.ones(real, xp.float32), xp.zeros(padding, xp.float32)])
    return indices.reshape(steps, batch_size), mask.reshape(steps, batch_size)
