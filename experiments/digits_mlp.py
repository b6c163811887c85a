"""The tutorial's digit recogniser: a deep MLP with ten softmax outputs, one per digit.

8x8 images of handwritten digits (scikit-learn's `digits`, 1,797 images)
flattened to 64 inputs, three hidden relu layers, and a softmax over the ten
classes, trained with categorical cross-entropy.

Run:
    jaxdl train --config experiments/digits_mlp.py
    jaxdl train --config experiments/digits_mlp.py:quick   # 10 epochs, for a smoke test
Result (seeds 0-4, 2-core CPU): test accuracy 0.9694-0.9721 on the 359 test
images, 1.8-2.0 s per run with a warm compilation cache.
"""

from jaxdl.config import default_config


def get_config(arg: str | None = None):
    cfg = default_config()
    cfg.data.name = "digits"
    cfg.model.mlp.hidden = (128, 64, 32)
    cfg.model.mlp.activation = "relu"
    cfg.model.output = "softmax"
    cfg.train.loss = "categorical_crossentropy"
    cfg.train.epochs = 60
    cfg.train.batch_size = 32
    cfg.optimizer.name = "adam"
    cfg.optimizer.learning_rate = 1e-3
    cfg.optimizer.schedule = "warmup_cosine"
    cfg.optimizer.warmup_steps = 100
    if arg == "quick":
        cfg.train.epochs = 10
    return cfg
