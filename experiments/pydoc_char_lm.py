"""A character-level Transformer language model of Python's own help text (issue 8).

The text is `pydoc_data.topics`, the 79 pages that `help("assert")` and its
kind print (465,000 characters, 103 distinct), shipped with Python: nothing to
download. Every 10th topic in sorted-key order is held out whole (8 topics,
32,153 characters). The model is a decoder-only Transformer with causal
self-attention (2 layers, width 128, 4 heads, 64-character context, 431,720
parameters) trained on windows of 65 characters every 32; the figure is
held-out bits per character, beside a unigram and a bigram baseline (add-one
smoothed character frequencies of the training text). Each evaluation prints
300 generated characters (temperature 0.8, prompt: the first held-out
topic's title line) and appends them to WORKDIR/samples.txt, headed by
the step ("=== step 423, temperature 0.8 ===").

Run:
    jaxdl train --config experiments/pydoc_char_lm.py
    jaxdl train --config experiments/pydoc_char_lm.py:quick  # a smoke test: 1-layer, 32-wide, ~10 s
    jaxdl train --config experiments/pydoc_char_lm.py:full   # 4 layers, width 256, context 128, 10 epochs
It trains with the one loop every task shares, so the shared settings apply:
--config.parallel=mesh or pmap (--config.mesh.fsdp=2 shards the parameters),
--config.ensemble.size=2 trains two models at once.

Result (seed 0, 2-core CPU shared with other jobs): held-out bits per
character 2.041 (unigram baseline 4.762, bigram 3.807) on the 32,152
held-out characters, 1,269 steps in 141 s (train loss 1.59 bits/char). The
sample after the last epoch begins:
    The "assert" statement
    container to the exception objects (using a function defined command occurrent classes are for code define
Epochs are ceil(13,527 / batch) steps: the last batch is padded and masked
rather than dropped (before the shared loop: 1,266 steps, 2.044 bits/char
in 163 s, 66 s when run alone with a warm compilation cache).
Tuning runs of 2 epochs (batch 32 or 64, learning rate 2e-3 to 5e-3)
reached 2.13-2.22; 3 epochs at batch 64, 2.09. `:quick`
reaches 3.549 (held-out; 212 steps) in about 8 s (3.524 with 211 steps before
the shared loop). `:full` (3,245,672 parameters, dropout
0.1) reached 1.906 held-out bits per character after its 10 epochs (2,110
steps, before the shared loop; held-out 2.43 bits after epoch 3, 1.95 after
epoch 7). It took about 45 minutes of wall time, sharing the CPU with other
jobs, in two parts: stopped by SIGTERM after epoch 2, then resumed by the same
command. Its sample began:
    The "assert" statement
    container to the exception objects (used affect, the return value is executed,
"""

from jaxdl.errors import InputError
from jaxdl.tasks import language_model


def get_config(arg: str | None = None):
    cfg = language_model.default_config()
    if arg == "quick":  # a smoke test: a tiny model, one short epoch
        cfg.model.context = 32
        cfg.model.embed_dim = 32
        cfg.model.num_heads = 2
        cfg.model.num_layers = 1
        cfg.data.stride = 32
        cfg.train.epochs = 1
        cfg.train.batch_size = 64
        cfg.optimizer.warmup_steps = 20
        cfg.optimizer.learning_rate = 1e-2
        cfg.sample.length = 60
        cfg.checkpoint.enabled = False
        cfg.logging.tensorboard = False
    elif arg == "full":
        cfg.model.context = 128
        cfg.model.embed_dim = 256
        cfg.model.num_heads = 8
        cfg.model.num_layers = 4
        cfg.model.dropout = 0.1
        cfg.train.epochs = 10
        cfg.optimizer.warmup_steps = 500
        cfg.optimizer.learning_rate = 1e-3
    elif arg is not None:
        raise InputError(f"--config=experiments/pydoc_char_lm.py:{arg}: unknown argument; expected quick or full")
    return cfg
