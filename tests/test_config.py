import os

import pytest

from jaxdl import config
from jaxdl.errors import InputError

from conftest import EXPERIMENTS


def test_defaults_are_the_tutorials_network():
    cfg = config.default_config()
    assert (cfg.data.name, tuple(cfg.model.mlp.hidden), cfg.model.mlp.activation) == ("breast_cancer", (12, 8), "relu")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.optimizer.name) == (150, 10, "adam")
    # The keys later issues and users rely on.
    keys = set(config.flat_keys(cfg))
    assert {"seed", "data.name", "data.data_dir", "model.mlp.hidden", "model.mlp.activation", "train.epochs",
            "train.batch_size", "optimizer.name", "optimizer.learning_rate"} <= keys


def test_overrides_take_the_type_of_the_default():
    cfg = config.default_config()
    config.apply_overrides(cfg, [
        ("model.mlp.hidden", "64,32"), ("train.epochs", "3"), ("optimizer.learning_rate", "1e-2"),
        ("data.data_dir", "/tmp/tfds"), ("model.mlp.input_dim", "30"), ("train.shuffle", "false"),
        ("optimizer.momentum", "0.5"), ("seed", "7"),
    ])
    assert cfg.model.mlp.hidden == (64, 32) and cfg.train.epochs == 3 and cfg.optimizer.learning_rate == 0.01
    assert cfg.data.data_dir == "/tmp/tfds" and cfg.model.mlp.input_dim == 30 and cfg.train.shuffle is False
    assert cfg.optimizer.momentum == 0.5 and cfg.seed == 7
    config.apply_overrides(cfg, [("model.mlp.hidden", "[5]")])
    assert cfg.model.mlp.hidden == (5,)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.epoch", "3", "--config.train.epoch: no such config key; did you mean 'train.epochs'"),
        ("optimizer.lr", "0.1", "did you mean 'optimizer.learning_rate'"),
        ("learning_rate", "0.1", "'optimizer.learning_rate'"),
        ("train.epochs", "ten", "--config.train.epochs='ten': expected int"),
        ("train.shuffle", "maybe", "--config.train.shuffle='maybe': expected bool"),
    ],
)
def test_bad_overrides(key, value, message):
    with pytest.raises(InputError) as err:
        config.apply_overrides(config.default_config(), [(key, value)])
    assert message in str(err.value)


def test_loads_experiment_files_with_an_argument():
    cfg = config.load(os.path.join(EXPERIMENTS, "digits_mlp.py"))
    quick = config.load(os.path.join(EXPERIMENTS, "digits_mlp.py") + ":quick")
    assert cfg.data.name == "digits" and cfg.train.epochs > quick.train.epochs == 10
    seed = config.load(os.path.join(EXPERIMENTS, "seed_mlp.py"))
    assert (tuple(seed.model.mlp.hidden), seed.model.output, seed.train.loss) == ((12, 8), "sigmoid", "binary_crossentropy")
    assert (seed.train.epochs, seed.train.batch_size, seed.optimizer.name) == (150, 10, "adam")


def test_missing_config_file():
    with pytest.raises(InputError, match="the config file 'experiments/nope.py' does not exist"):
        config.load("experiments/nope.py")


def test_config_file_with_a_misspelt_key(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("def get_config():\n    return {'train': {'epohcs': 3}}\n")
    with pytest.raises(InputError, match="config key 'train.epohcs' is not known; did you mean 'train.epochs'"):
        config.load(str(path))
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(InputError, match="defines no get_config"):
        config.load(str(tmp_path / "none.py"))
