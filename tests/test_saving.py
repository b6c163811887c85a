"""The Python face as a notebook uses it: fit with a workdir (interrupted, resumed), save, load, predict on raw rows."""

import json
import os
import shutil
import subprocess
import sys

import flax.linen as nn
import numpy as np
import pytest

import jaxdl
from jaxdl.errors import InputError

# A notebook's cells, as one script: read a CSV, fit with a workdir; SIGTERM arrives during epoch STOP_AT.
NOTEBOOK = """
import json, os, signal, sys
import numpy as np
import jaxdl

csv, workdir, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
table = np.loadtxt(csv, delimiter=",")
x, y = table[:, :-1], table[:, -1].astype(int)

def preempt(state, step, figures):  # the cluster's SIGTERM, at a known moment
    if figures["epoch"] == stop_at:
        os.kill(os.getpid(), signal.SIGTERM)

model = jaxdl.MLP(hidden=(12, 8))
state, history = jaxdl.fit(model, x, y, epochs=12, batch_size=10, validation_split=0.2, scaling="standard",
                           workdir=workdir, callbacks=[preempt] if stop_at else [], verbose=False)
out = {"stopped_at": history.stopped_at, "epochs": history.epoch, "sha": jaxdl.params_sha256(state.params)}
if history.stopped_at is None:
    np.save(os.path.join(os.path.dirname(csv), "outputs.npy"), jaxdl.predict(state, x[:40]))
print(json.dumps(out))
"""

LOAD = """
import sys
import numpy as np
import jaxdl

state = jaxdl.load(sys.argv[1])
np.save(sys.argv[2], jaxdl.predict(state, np.load(sys.argv[3])))
"""


def _python(*args, cwd):
    done = subprocess.run([sys.executable, "-c", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_notebook_run_stopped_by_sigterm_resumes_exactly_and_loads_without_its_data(tmp_path):
    from jaxdl import data

    raw = data.load("breast_cancer", scaling="none").train  # raw features: the run fits its own scaling
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    csv = data_dir / "train.csv"
    np.savetxt(csv, np.column_stack([raw.x, raw.y]), delimiter=",")
    rows = tmp_path / "rows.npy"
    np.save(rows, raw.x[:40])

    stopped = json.loads(_python(NOTEBOOK, str(csv), str(tmp_path / "w"), "5", cwd=tmp_path).splitlines()[-1])
    assert stopped["stopped_at"] is not None and stopped["epochs"][-1] == 5
    resumed = json.loads(_python(NOTEBOOK, str(csv), str(tmp_path / "w"), "0", cwd=tmp_path).splitlines()[-1])
    assert resumed["stopped_at"] is None and resumed["epochs"] == list(range(1, 13))  # the history holds every epoch
    before = np.load(data_dir / "outputs.npy")
    reference = json.loads(_python(NOTEBOOK, str(csv), str(tmp_path / "ref"), "0", cwd=tmp_path).splitlines()[-1])
    assert resumed["sha"] == reference["sha"]

    # Another machine: a copy of the workdir, no training data.
    shutil.copytree(tmp_path / "w", tmp_path / "copy")
    shutil.rmtree(data_dir)
    _python(LOAD, str(tmp_path / "copy"), str(tmp_path / "loaded.npy"), str(rows), cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "loaded.npy"), before)
    assert np.mean((before[:, 0] > 0.5) == raw.y[:40]) > 0.9  # raw rows, scaled by the saved scaling


class Doubler(nn.Module):
    """A Linen module of this file: importable by name, so its definition is saved."""

    width: int = 8
    activation: object = nn.relu

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(self.activation(nn.Dense(self.width)(x)))


def test_save_and_load_round_trip_definitions_and_refuse_what_does_not_fit(blobs, tmp_path):
    x, y = blobs
    state, _ = jaxdl.fit(Doubler(width=6), x, y, epochs=2, batch_size=50, scaling="minmax", verbose=False)
    path = jaxdl.save(state, str(tmp_path / "model"))
    described = json.loads((tmp_path / "model" / "model.json").read_text())
    assert described["model"]["definition"] == {
        "class": "test_saving:Doubler", "fields": {"width": 6, "activation": {"function": "jax.nn:relu"}}}
    loaded = jaxdl.load(path)
    np.testing.assert_array_equal(jaxdl.predict(loaded, x), jaxdl.predict(state, x))
    assert jaxdl.evaluate(loaded, x, y) == jaxdl.evaluate(state, (x, y))
    # Raw rows and rows scaled by hand, said so, give the same outputs.
    scaled = (x - np.min(x, axis=0)) / (np.max(x, axis=0) - np.min(x, axis=0))
    np.testing.assert_allclose(jaxdl.predict(loaded, scaled, scaled=True), jaxdl.predict(loaded, x), rtol=1e-5, atol=1e-6)

    jaxdl.save(loaded, path)  # a saved model is replaced as a whole
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not a saved jaxdl model"):
        jaxdl.save(state, str(tmp_path / "other"))
    with pytest.raises(InputError, match=r"the model does not fit the weights .*Dense_0"):
        jaxdl.load(path, model=Doubler(width=7))
    weights = tmp_path / "model" / "weights.msgpack"
    damaged = bytearray(weights.read_bytes())
    damaged[-3] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="do not match the digest"):
        jaxdl.load(path)
    with pytest.raises(InputError, match="holds neither a saved model"):
        jaxdl.load(str(tmp_path / "other"))


def test_a_model_without_a_saved_definition_loads_when_passed(blobs, tmp_path):
    x, y = blobs
    state, _ = jaxdl.fit(Doubler(activation=lambda v: v * 2), x, y, epochs=1, batch_size=50, verbose=False)
    path = jaxdl.save(state, str(tmp_path / "model"))
    with pytest.raises(InputError, match=r"has no saved definition \(field activation: .*pass it: jaxdl.load"):
        jaxdl.load(path)
    loaded = jaxdl.load(path, model=state.model.module)
    np.testing.assert_array_equal(jaxdl.predict(loaded, x), jaxdl.predict(state, x))


def test_fit_with_a_workdir_refuses_other_data_and_fine_tunes_a_loaded_state(blobs, tmp_path):
    x, y = blobs
    workdir = str(tmp_path / "w")
    state, history = jaxdl.fit(jaxdl.MLP(hidden=(4,)), x, y, epochs=2, batch_size=50, workdir=workdir, verbose=False)
    assert {"config.json", "model.json", "metrics.jsonl", "summary.json", "checkpoints", "tensorboard"} <= set(os.listdir(workdir))
    again, history_again = jaxdl.fit(jaxdl.MLP(hidden=(4,)), x, y, epochs=2, batch_size=50, workdir=workdir, verbose=False)
    assert jaxdl.params_sha256(again.params) == jaxdl.params_sha256(state.params)  # finished: nothing trained again
    assert history_again.epoch == [1, 2]
    with pytest.raises(InputError, match=r"(?s)whose arguments differ in settings that change the result:\n  fit.data_sha256.*pass force=True"):
        jaxdl.fit(jaxdl.MLP(hidden=(4,)), x + 1, y, epochs=2, batch_size=50, workdir=workdir, verbose=False)
    # Fine-tuning starts from the state's weights: with a learning rate of 0 they stay as they are.
    import optax

    loaded = jaxdl.load(workdir)
    tuned, _ = jaxdl.fit(loaded, x, y, epochs=1, batch_size=50, optimizer=optax.sgd(0.0), verbose=False)
    assert jaxdl.params_sha256(tuned.params) == jaxdl.params_sha256(state.params)
