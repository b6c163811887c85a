import numpy as np
import pytest

import jaxdl
from jaxdl.errors import InputError


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
        ({"batch_size": 0}, "batch_size=0: expected an integer >= 1"),
        ({"batch_size": 201}, r"batch_size=201 is larger than the dataset \(200 examples\)"),
        ({"optimizer": "adagrad"}, "optimizer='adagrad' is not a known optimizer; expected one of"),
        ({"loss": "hinge"}, "loss='hinge' is not a known loss; expected one of"),
        ({"epochs": 0}, "epochs=0: expected an integer >= 1"),
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
    with pytest.raises(InputError, match=r"train_data features have shape \(200, 4\).*expects input_dim=8"):
        jaxdl.fit(jaxdl.MLP(input_dim=8), (x, y), verbose=False)
    with pytest.raises(InputError, match=r"train_data labels outside the classes: row \d+ has label 2"):
        jaxdl.fit(jaxdl.MLP(), (x, y * 2), verbose=False)
    with pytest.raises(InputError, match=r"model MLP returns 10 logits per example, but train_data labels go up to 10"):
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
    with pytest.raises(InputError, match="data features have shape"):
        jaxdl.evaluate(state, (x[:, :3], y))
