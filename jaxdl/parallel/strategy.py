"""Where a step runs: one device, data-parallel replicas (pmap), or a device mesh (jit + sharding).

A `Strategy` is chosen once per run (`choose`). It says how the training
state and each batch are placed on the devices, and how a compiled function
splits the work:

- `single`: plain `jax.jit` on the default device.
- `pmap`: `jax.pmap` over the devices; every device holds the whole state,
  takes its slice of each batch, and the step averages gradients with
  `lax.pmean` over the axis named `data` (the step's `axis_name`).
- `mesh`: `jax.jit` over a `jax.sharding.Mesh`; batches are split along the
  mesh with `NamedSharding` and XLA inserts the gradient all-reduce. A second
  mesh axis, `fsdp`, can shard the parameters and optimizer state as well.
  Across several hosts (`jax.distributed.initialize`), each process passes its
  own rows and `jax.make_array_from_process_local_data` assembles the
  global batch.

An ensemble (`members` > 0) trains many models at once with `jax.vmap`;
under `mesh` its member axis, not the batch, is split across the devices.

Whatever the strategy, state and metric totals leave a compiled call as
ordinary (replicated or sharded) `jax.Array`s, so the loop treats them alike.
"""

import dataclasses

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxdl.config import PARALLEL
from jaxdl.errors import InputError

KINDS = PARALLEL  # the choices live with the config schema
AXIS = "data"  # the axis name the step sees under pmap; the batch axis of the mesh
FSDP = "fsdp"  # the mesh axis that shards parameters


@dataclasses.dataclass(frozen=True)
class Strategy:
    """How and where compiled steps run.

    Attributes:
      kind: "single", "pmap" or "mesh".
      mesh: the devices: for `mesh`, with axes ("data", "fsdp"); for
        `pmap`, this host's devices on the axis "data".
      members: the ensemble's size; 0 for one model.
    """

    kind: str = "single"
    mesh: Mesh | None = None
    members: int = 0

    @property
    def width(self) -> int:
        """How many devices share the work."""
        return 1 if self.mesh is None else self.mesh.size

    @property
    def fsdp(self) -> int:
        """Devices along the parameter-sharding axis (1: parameters replicated)."""
        return 1 if self.mesh is None else self.mesh.shape.get(FSDP, 1)

    @property
    def axis_name(self) -> str | None:
        """The named axis the train step reduces over: only pmap needs one."""
        return AXIS if self.kind == "pmap" else None

    def describe(self) -> str:
        if self.kind == "single":
            return "single device"
        what = f"{self.members} ensemble members" if self.members else "each batch"
        layout = f" (data {self.mesh.shape[AXIS]} x fsdp {self.fsdp})" if self.fsdp > 1 else ""
        return f"{self.kind} over {self.width} devices{layout}, splitting {what}"


SINGLE = Strategy()


def _mesh(fsdp: int = 1) -> Mesh:
    devices = np.asarray(jax.devices()).reshape(-1, fsdp)
    return Mesh(devices, (AXIS, FSDP))


def choose(
    kind: str, *, batch_size: int, members: int = 0, fsdp: int = 1, batch_argument: str = "train.batch_size"
) -> tuple[Strategy, str]:
    """Picks the strategy for a run and checks that its work divides over the devices.

    Args:
      kind: "auto" (a mesh over all devices when there is more than one and
        the work divides over them, one device otherwise), "single", "pmap"
        or "mesh".
      batch_size: the global batch (over all hosts).
      members: the ensemble's size, 0 or 1 for one model.
      fsdp: devices along the mesh's parameter-sharding axis.

    Returns:
      (strategy, why): why says what "auto" chose and why; "" otherwise.

    Raises:
      InputError: for an unknown kind, or work that does not divide over
        the devices, with the numbers.
    """
    if kind not in KINDS:
        raise InputError(f"parallel={kind!r} is not known; expected one of: {', '.join(KINDS)}")
    if isinstance(fsdp, bool) or not isinstance(fsdp, int) or fsdp < 1:
        raise InputError(f"mesh.fsdp={fsdp!r}: expected an integer >= 1")
    members = members if members > 1 else 0
    count = jax.device_count()
    if fsdp > 1 and kind not in ("mesh", "auto"):
        raise InputError(f"mesh.fsdp={fsdp} shards parameters over a mesh: it needs parallel='mesh', not {kind!r}")
    if fsdp > 1 and members:
        raise InputError(f"mesh.fsdp={fsdp}: an ensemble splits its members over the devices; keep mesh.fsdp=1")
    if fsdp > 1 and count % fsdp:
        raise InputError(f"mesh.fsdp={fsdp} does not divide the {count} devices; expected a divisor of {count}")
    work, name = (members, "ensemble.size") if members else (batch_size, batch_argument)
    single = Strategy("single", None, members)
    if kind == "auto":
        if count == 1 and fsdp == 1:
            return single, ""
        if work % count:
            if fsdp > 1 or jax.process_count() > 1:
                raise InputError(_not_divisible(name, work, count, "mesh"))
            return single, f"parallel=auto: {name}={work} does not divide over {count} devices, so one device is used"
        kind = "mesh"
    if kind == "single":
        if jax.process_count() > 1:
            raise InputError(f"parallel='single' runs on one device, but {jax.process_count()} processes joined this run; use 'mesh'")
        return single, ""
    if kind == "pmap" and members:
        raise InputError("an ensemble (ensemble.size > 1) runs under parallel='single' or 'mesh', not 'pmap'")
    if work % count:
        raise InputError(_not_divisible(name, work, count, kind))
    if kind == "pmap":
        # The layout pmap gives its replicated outputs: placing the state the same way
        # means its first call compiles the same program as every later one.
        return Strategy(kind, Mesh(np.asarray(jax.local_devices()), (AXIS,)), members), ""
    return Strategy(kind, _mesh(fsdp), members), ""


def _not_divisible(name: str, value: int, count: int, kind: str) -> str:
    lower, upper = value // count * count, -(-value // count) * count
    nearest = " or ".join(str(v) for v in (lower, upper) if v > 0)
    return (
        f"{name}={value} does not divide over the {count} devices of parallel={kind!r} "
        f"({value} / {count} = {value / count:g}); expected a multiple of {count}, such as {nearest}"
    )


# ---------------------------------------------------------------------------
# Placing the state and batches.


def _fsdp_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """Shards an array's largest dimension that divides over the fsdp axis; replicates the rest."""
    dims = sorted(range(len(shape)), key=lambda d: -shape[d])
    for d in dims:
        if shape[d] % fsdp == 0 and shape[d] >= fsdp:
            return P(*([None] * d), FSDP)
    return P()


def state_shardings(strategy: Strategy, state):
    """The sharding of every leaf of `state` under a mesh strategy (None for the others)."""
    if strategy.mesh is None:
        return None
    if strategy.members:  # the leading member axis of every leaf, split over all devices
        return jax.tree.map(lambda _: NamedSharding(strategy.mesh, P((AXIS, FSDP))), state)
    if strategy.kind == "mesh" and strategy.fsdp > 1:
        return jax.tree.map(lambda a: NamedSharding(strategy.mesh, _fsdp_spec(np.shape(a), strategy.fsdp)), state)
    return jax.tree.map(lambda _: NamedSharding(strategy.mesh, P()), state)


def place_state(strategy: Strategy, state):
    """Puts a state (or metric totals) where the strategy's compiled calls expect it."""
    if strategy.mesh is None:
        return state
    shardings = state_shardings(strategy, state)
    if jax.process_count() == 1:
        return jax.device_put(state, shardings)
    # Every process holds the same full values; each keeps the pieces its devices own.
    return jax.tree.map(
        lambda a, s: jax.make_array_from_callback(np.shape(a), s, lambda index: np.asarray(a)[index]),
        state, shardings,
    )


def place_batch(strategy: Strategy, batch: dict, *, axis: int = 0) -> dict:
    """Puts a host batch where a compiled call expects it, split along `axis` (this host's rows).

    Under pmap the split axis becomes (devices, rows per device), which pmap
    maps over; under a mesh each process's rows become its part of one
    global array.
    """
    if strategy.kind == "single":
        return batch
    if strategy.kind == "pmap":
        local = jax.local_device_count()
        return {k: v.reshape(*v.shape[:axis], local, v.shape[axis] // local, *v.shape[axis + 1 :]) for k, v in batch.items()}
    return {
        k: jax.make_array_from_process_local_data(NamedSharding(strategy.mesh, _split_spec(axis, np.ndim(v))), v)
        for k, v in batch.items()
    }


def _split_spec(axis: int, ndim: int) -> P:
    return P(*([None] * axis), (AXIS, FSDP), *([None] * (ndim - axis - 1)))  # over every device of the mesh


def split(strategy: Strategy, tree, *, axis: int):
    """Inside a compiled call: this device's share of arrays laid out whole, along `axis`.

    Under pmap each device slices its part by its index on the axis; under a
    mesh the arrays are annotated as split, and XLA partitions the work
    around them; on one device nothing changes.
    """
    if strategy.kind == "single":
        return tree
    if strategy.kind == "pmap":
        def take_mine(a):
            size = a.shape[axis] // jax.lax.axis_size(AXIS)
            return jax.lax.dynamic_slice_in_dim(a, jax.lax.axis_index(AXIS) * size, size, axis)
        return jax.tree.map(take_mine, tree)
    return jax.tree.map(
        lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(strategy.mesh, _split_spec(axis, a.ndim))), tree
    )


def keep_placed(strategy: Strategy, state):
    """Inside a compiled call: pins the new state to the sharding the old one had (mesh only)."""
    shardings = state_shardings(strategy, state) if strategy.kind == "mesh" else None
    return state if shardings is None else jax.lax.with_sharding_constraint(state, shardings)


def local(tree):
    """A pytree whose every array is usable by this process alone, on one local device.

    Arrays that span several hosts are replaced by this process's copy (the
    first shard it holds) when they are replicated, and gathered from all
    processes when they are split. Other arrays pass through unchanged.
    """

    def one(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            shard = a.addressable_shards[0]
            if shard.data.shape == a.shape:  # replicated: this process already has all of it
                return shard.data
            return jax.device_put(multihost_utils.process_allgather(a, tiled=True), jax.local_devices()[0])
        return a

    return jax.tree.map(one, tree)
