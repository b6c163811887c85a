"""Test setup: 8 simulated CPU devices (set before jax is imported), shared small fixtures."""

import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Datasets prepared by the tests go to a fresh folder, never the user's ~/tensorflow_datasets.
os.environ.setdefault("TFDS_DATA_DIR", tempfile.mkdtemp(prefix="jaxdl-tests-tfds-"))
# The persistent compilation cache goes to a fresh folder too: one per pytest-xdist worker, so that two
# workers never read an entry the other is still writing.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=f"jaxdl-tests-cache-{os.environ['PYTEST_XDIST_WORKER']}-")
else:
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="jaxdl-tests-cache-"))
# On a GPU, let test subprocesses allocate memory beside the test process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Tests compare two ways of computing the same thing; on GPUs float32 matmuls
# default to TF32, whose rounding would swamp the tolerances. (No-op on CPU.)
jax.config.update("jax_default_matmul_precision", "highest")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = os.path.join(REPO, "experiments")


@pytest.fixture
def blobs():
    """A small, separable binary problem: two Gaussian blobs in 4 dimensions, 200 examples."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 4)).astype(np.float32) + 2.0 * y[:, None]
    return x, y


class CompileCounter:
    """Counts XLA backend compilations (every jit cache miss that really compiles)."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, name, duration, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            self.count += 1


_COMPILES = None


@pytest.fixture
def compiles():
    """The process-wide compile counter; read `.count` before and after the code under test."""
    global _COMPILES
    if _COMPILES is None:
        _COMPILES = CompileCounter()
    return _COMPILES


def replace_train_labels(load, labels):
    """Wraps `jaxdl.data.load` so that the training split's labels become `labels(y)` (to show a task ignores them)."""
    from jaxdl import data

    def load_with(*args, **kwargs):
        splits = load(*args, **kwargs)
        train = data.ArrayDataset(splits.train.x, labels(splits.train.y))
        return type(splits)(train=train, test=splits.test, info=splits.info)

    return load_with


def supervised_task(model, loss="binary_crossentropy", tx=None, input_shape=(30,), **options):
    """A `Supervised` task of a Flax module (what `jaxdl.fit` builds), for tests of the steps, feeds and loop."""
    import optax

    from jaxdl import losses, modules
    from jaxdl.tasks.supervised import Supervised

    return Supervised(modules.wrap(model), losses.resolve(loss), tx if tx is not None else optax.adam(1e-3),
                      input_shape=input_shape, **options)


def zeros_for(step, state, batch):
    """Empty train totals of `step` for `state` and a batch like `batch` (host arrays)."""
    from jaxdl.loop import zero_totals

    return zero_totals(step, state, jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), batch))
