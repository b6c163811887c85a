"""Ensembles: K models in one vmapped program equal K separate runs, member by member."""

import json
import os

import flax.serialization
import jax
import numpy as np
import pytest

import jaxdl
from conftest import supervised_task
from jaxdl import config, data, ensemble, parallel, run
from jaxdl.errors import InputError

EPOCHS = 3


@pytest.fixture(scope="module")
def splits():
    return data.load("breast_cancer")


def _fit(splits, **kwargs):
    args = dict(epochs=EPOCHS, batch_size=10, verbose=False, parallel="single")
    args.update(kwargs)
    return jaxdl.fit(jaxdl.MLP(), (splits.train.x, splits.train.y), validation_data=(splits.test.x, splits.test.y), **args)


def _assert_member_equals(ensemble_state, index, single_state):
    # vmap batches the matmuls of all members into one: equal to float32 rounding, not bitwise.
    member = parallel.fetch(ensemble.member(parallel.local(ensemble_state), index).params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), member, parallel.fetch(single_state.params))


@pytest.mark.parametrize("pipeline", ["device", "host"])
def test_ensemble_members_equal_separate_runs_with_their_seeds(splits, pipeline):
    members, history = _fit(splits, ensemble=3, seed=5, pipeline=pipeline)
    assert ensemble.size(members) == 3 and members.params["output"]["kernel"].shape == (3, 8, 1)
    for k in range(3):
        single, single_history = _fit(splits, seed=5 + k, pipeline=pipeline)
        _assert_member_equals(members, k, single)
        assert history.last["eval_accuracy_members"][k] == single_history.last["eval_accuracy"]
        assert history.last["train_loss_members"][k] == pytest.approx(single_history.last["train_loss"], rel=1e-5)
    assert history.last["eval_accuracy"] == pytest.approx(np.mean(history.last["eval_accuracy_members"]))


def test_per_member_learning_rates_and_weight_decays(splits):
    rates, decays = (3e-4, 1e-3, 1e-2), (0.0, 1e-2, 1.0)
    members, history = _fit(
        splits, ensemble=3, optimizer="adamw", ensemble_learning_rates=rates, ensemble_weight_decays=decays
    )
    for k in range(3):
        single, _ = _fit(splits, seed=k, optimizer={"name": "adamw", "learning_rate": rates[k], "weight_decay": decays[k]})
        _assert_member_equals(members, k, single)
    losses = history.last["train_loss_members"]
    assert len(set(np.round(losses, 6))) == 3  # the members really trained differently


def test_ensemble_under_a_mesh_splits_members_over_devices(splits):
    on_one, _ = _fit(splits, ensemble=8)
    on_mesh, _ = _fit(splits, ensemble=8, parallel="mesh")
    kernel = on_mesh.params["hidden_0"]["kernel"]
    assert len(kernel.sharding.device_set) == 8 and kernel.addressable_shards[0].data.shape == (1, 30, 12)
    for k in range(8):
        _assert_member_equals(on_mesh, k, ensemble.member(on_one, k))


def test_member_best_and_summarise():
    record = ensemble.summarise({"accuracy": np.array([0.5, 0.9, 0.7]), "loss": np.array([0.3, 0.2, 0.1]), "x": 1.0})
    assert record["accuracy"] == pytest.approx(0.7) and record["accuracy_members"] == [0.5, 0.9, 0.7]
    assert record["x"] == 1.0 and "x_members" not in record
    evals = {f"eval_{k}": v for k, v in record.items()}
    assert ensemble.best(evals, "eval_accuracy") == 1
    assert ensemble.best(evals, "eval_loss") == 2  # lowest is best for losses
    with pytest.raises(InputError, match="ensemble.select='eval_auc': no such per-member metric"):
        ensemble.best(evals, "eval_auc")


def test_member_is_an_ordinary_state_for_evaluate_and_predict(splits):
    members, _ = _fit(splits, ensemble=2)
    second = ensemble.member(members, 1)
    assert ensemble.size(second) == 0
    result = jaxdl.evaluate(second, (splits.test.x, splits.test.y))
    all_outputs = jaxdl.predict(members, splits.test.x)  # every member's outputs
    assert all_outputs.shape == (2, len(splits.test), 1)
    np.testing.assert_allclose(all_outputs[1], jaxdl.predict(second, splits.test.x), rtol=1e-6)
    accuracy = np.mean((all_outputs[1, :, 0] > 0.5) == splits.test.y)
    assert result["accuracy"] == pytest.approx(accuracy)
    with pytest.raises(InputError, match="member index 2: expected 0 to 1"):
        ensemble.member(members, 2)


def test_cli_ensemble_reports_members_and_exports_the_best(tmp_path, capsys):
    from jaxdl import cli

    workdir = str(tmp_path / "run")
    code = cli.main([
        "train", "--quiet", "--workdir", workdir, "--config.ensemble.size=4", "--config.train.epochs=3",
        "--config.ensemble.learning_rate=0.0003,0.001,0.003,0.01",
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "ensemble of 4: test accuracy mean" in out and "best member:" in out
    summary = json.load(open(os.path.join(workdir, "summary.json")))
    accuracies = summary["eval_accuracy_members"]
    assert len(accuracies) == 4 and summary["ensemble_size"] == 4
    assert accuracies[summary["best_member"]] == max(accuracies) == summary["best_eval_accuracy"]
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert len(records[0]["loss_members"]) == 4
    # The exported weights are the best member's, as the run's summary records them.
    template = {"params": jax.tree.map(lambda a: a[0], ensemble_template()), "model_state": {}}
    with open(os.path.join(workdir, "best_member.msgpack"), "rb") as f:
        weights = flax.serialization.from_bytes(template, f.read())
    assert jaxdl.params_sha256(weights["params"]) == summary["best_member_params_sha256"]


def ensemble_template():
    task = supervised_task(jaxdl.MLP(), tx=jaxdl.optim.build({}, total_steps=1), input_shape=(30,))
    return parallel.init_state(task.init, 0, members=1).params


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ensemble.learning_rate": (1e-3, 1e-2)}, "ensemble.learning_rate gives per-member values, but ensemble.size=1; set the ensemble's size"),
        ({"ensemble.size": 3, "ensemble.learning_rate": (1e-3, 1e-2)}, "ensemble.learning_rate has 2 values; expected one per member (3)"),
        ({"ensemble.size": 2, "ensemble.weight_decay": (0.0, 0.1)}, "ensemble.weight_decay needs optimizer.name='adamw', not 'adam'"),
        ({"ensemble.size": 2, "ensemble.learning_rate": (1e-3, -1.0)}, "expected numbers > 0"),
        ({"ensemble.size": 0}, "ensemble.size=0: expected an integer from 1 to 2147483647"),
        ({"ensemble.select": "f1"}, "ensemble.select='f1' is not known"),
        ({"ensemble.size": 2, "parallel": "pmap", "train.batch_size": 16}, "runs under parallel='single' or 'mesh', not 'pmap'"),
    ],
)
def test_bad_ensemble_settings_fail_before_anything_runs(tmp_path, overrides, message):
    cfg = config.default_config()
    for key, value in overrides.items():
        section, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        (cfg[section] if section else cfg)[leaf] = value
    with pytest.raises(InputError) as err:
        run.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert message in str(err.value)
    assert not os.path.exists(tmp_path / "run")
