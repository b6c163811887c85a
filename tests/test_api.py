import numpy as np
import optax
import pytest

import jaxdl
from jaxdl.errors import InputError
from jaxdl.loop import History


def test_fit_on_arrays_learns_and_returns_history(blobs):
    x, y = blobs
    model = jaxdl.MLP(hidden=(8,), num_outputs=1, output_activation="sigmoid")
    state, history = jaxdl.fit(model, (x[:150], y[:150]), epochs=15, batch_size=10,
                               validation_data=(x[150:], y[150:]), verbose=False)
    assert len(history) == 15 and int(state.step) == 15 * 15
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["eval_accuracy"] > 0.85  # chance is 0.5
    result = jaxdl.evaluate(state, (x[150:], y[150:]))
    assert result["accuracy"] == pytest.approx(history.last["eval_accuracy"])
    assert set(result) == {"loss", "accuracy", "precision", "recall", "auc"}
    probs = jaxdl.predict(state, x[150:])
    assert probs.shape == (50, 1) and np.all((probs > 0) & (probs < 1))
    assert np.mean((probs[:, 0] > 0.5) == y[150:]) == pytest.approx(result["accuracy"])


def test_fit_on_a_dataset_name_with_softmax_outputs():
    model = jaxdl.MLP(hidden=(32,), num_outputs=10, output_activation="softmax")
    state, history = jaxdl.fit(model, "digits", epochs=5, batch_size=32, loss="categorical_crossentropy",
                               validation_data="test", verbose=False)
    assert history.last["eval_accuracy"] > 0.85
    probs = jaxdl.predict(state, jaxdl.data.load("digits").test.x[:7])
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(7), rtol=1e-5)
    assert jaxdl.evaluate(state, "digits")["accuracy"] == pytest.approx(history.last["eval_accuracy"])


def test_fit_with_optimizer_settings_and_same_seed_same_params(blobs):
    x, y = blobs
    model = jaxdl.MLP(hidden=(4,), num_outputs=1)
    runs = [jaxdl.fit(model, (x, y), epochs=2, batch_size=20, optimizer={"name": "sgd", "learning_rate": 0.1},
                      seed=s, verbose=False)[0] for s in (3, 3, 4)]
    digests = [jaxdl.params_sha256(s.params) for s in runs]
    assert digests[0] == digests[1] != digests[2]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size=0: expected an integer from 1 to 2147483647"),
        ({"batch_size": 201}, r"batch_size=201 is larger than the dataset \(200 examples\)"),
        ({"optimizer": "adagrad"}, "optimizer='adagrad' is not a known optimizer; expected one of"),
        ({"optimizer": {"name": "Adam", "learning_rate": float("nan")}}, r"optimizer\['learning_rate'\]=nan: expected a finite"),
        ({"optimizer": optax.constant_schedule}, "optimizer: the function given returned a function; expected an optax "
         "GradientTransformation"),
        ({"callbacks": [jaxdl.EarlyStopping("eval_loss")]}, r"EarlyStopping\(metric='eval_loss'\) watches an evaluation "
         "figure, but this run has no validation data"),
        ({"validation_split": 1.5}, r"validation_split=1.5: expected a fraction in \[0, 1\)"),
        ({"scaling": "zscore"}, "scaling='zscore': expected one of: standard, minmax, none"),
        ({"pipeline": "gpu"}, "pipeline='gpu' is not known"),
        ({"ensemble": 2, "ensemble_learning_rates": (0.1,)}, "ensemble_learning_rates has 1 values; expected one per member"),
        ({"loss": "hinge"}, "loss='hinge' is not a known loss; expected one of"),
        ({"epochs": 0}, "epochs=0: expected an integer from 1 to 2147483647"),
        ({"loss": "categorical_crossentropy"}, r"needs one logit per class, \(examples, classes >= 2\), but model MLP returns shape \(4, 1\)"),
    ],
)
def test_fit_rejects_bad_arguments_before_compiling(blobs, compiles, kwargs, message):
    x, y = blobs
    before = compiles.count
    with pytest.raises(InputError, match=message):
        jaxdl.fit(jaxdl.MLP(hidden=(4,)), (x, y), verbose=False, **{"epochs": 1, **kwargs})
    assert compiles.count == before


def test_fit_rejects_bad_data(blobs, compiles):
    x, y = blobs
    before = compiles.count
    with pytest.raises(InputError, match=r"x features have shape \(200, 4\).*expects input_dim=8"):
        jaxdl.fit(jaxdl.MLP(input_dim=8), (x, y), verbose=False)
    with pytest.raises(InputError, match=r"y labels outside the classes: row \d+ has label 2"):
        jaxdl.fit(jaxdl.MLP(), (x, y * 2), verbose=False)
    with pytest.raises(InputError, match=r"model MLP returns 10 logits per example, but y labels go up to 10"):
        jaxdl.fit(jaxdl.MLP(num_outputs=10, output_activation="softmax"), (x, np.full(200, 10)),
                  loss="categorical_crossentropy", verbose=False)
    with pytest.raises(InputError, match="dataset 'iris_typo' is not known"):
        jaxdl.fit(jaxdl.MLP(), "iris_typo", verbose=False)
    assert compiles.count == before


def test_predict_and_evaluate_check_the_feature_width(blobs):
    x, y = blobs
    state, _ = jaxdl.fit(jaxdl.MLP(hidden=(4,)), (x, y), epochs=1, batch_size=50, verbose=False)
    with pytest.raises(InputError, match=r"x have shape \(3,\) per example, but the model was trained on \(4,\)"):
        jaxdl.predict(state, x[:, :3])
    with pytest.raises(InputError, match="x features have shape"):
        jaxdl.evaluate(state, (x[:, :3], y))


def test_history_is_a_small_honest_object():
    records = [{"epoch": 1, "step": 5, "train_loss": 0.5}, {"epoch": 2, "step": 10, "train_loss": 0.25, "eval_loss": 0.375}]
    history = History(records)
    assert "eval_loss" in history and "eval_auc" not in history and len(history) == 2
    assert [record["epoch"] for record in history] == [1, 2] == history.epoch
    assert history.history == {"epoch": [1, 2], "step": [5, 10], "train_loss": [0.5, 0.25], "eval_loss": [None, 0.375]}
    assert history["eval_loss"] == [None, 0.375] and history[-1] is history.last is records[1]
    with pytest.raises(KeyError, match="'eval_acc' is not a figure of this run; it has: epoch, step, train_loss, eval_loss"):
        history["eval_acc"]
    assert repr(history) == "History(2 epochs; last: train_loss=0.25, eval_loss=0.375)"
    long = History([{"epoch": e, "step": e, "train_loss": 1 / e, "eval_accuracy": 0.5} for e in range(1, 151)])
    assert len(repr(long)) < 100
    with pytest.raises(IndexError, match="no epoch was trained"):
        History().last


def test_keras_call_shapes_train_the_same_model(blobs):
    x, y = blobs
    model = jaxdl.MLP(hidden=(4,))

    def digest(*args, **kwargs):
        state, _ = jaxdl.fit(model, *args, epochs=2, batch_size=20, verbose=False, **kwargs)
        return jaxdl.params_sha256(state.params)

    pair = digest((x, y))
    assert digest(x, y) == digest(x=x, y=y) == pair
    assert digest(x, y, optimizer="Adam") == digest(x, y, optimizer=optax.adam) == digest(x, y, optimizer=optax.adam(1e-3)) == pair
    assert digest(x, y, validation_split=0.25) == digest(x[:150], y[:150], validation_data=(x[150:], y[150:]))
    calls = []  # a plain function is a hook; with no validation data it sees every epoch
    jaxdl.fit(model, x, y, epochs=2, batch_size=20, verbose=False, callbacks=[lambda state, step, figures: calls.append(step)])
    assert calls == [10, 20]
    with pytest.raises(InputError, match=r"MLP.hidden=8: expected a sequence of layer widths, e.g. \(12, 8\), or \(8,\)"):
        jaxdl.fit(jaxdl.MLP(hidden=8), x, y, verbose=False)
    with pytest.raises(InputError, match="y=150: expected the labels, one per row of x; epochs and batch_size are keyword"):
        jaxdl.fit(model, (x, y), 150)
