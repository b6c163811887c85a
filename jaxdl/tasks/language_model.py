"""A character-level Transformer language model: predicting the next character of text, one character at a time.

The text ships with Python itself: `pydoc_data.topics`, the 79 help topics
that `help("assert")` and friends print (about 465,000 characters), joined in
sorted-key order with a blank line between topics. Whole topics are held out
(every 10th in sorted-key order, starting with the first, at the default
`data.test_fraction` of 0.1), so the held-out text is documentation the model
never read, not the continuation of a page it did. `data.text_file` trains on
a UTF-8 file of your own instead, holding out its last `data.test_fraction`.

The model is a decoder-only Transformer: token and learned position
embeddings, pre-LayerNorm blocks of causal multi-head self-attention and an
MLP, a final LayerNorm and logits over the characters. The vocabulary is the
training text's characters plus one id for characters never seen in training
(id 0), which the held-out text may contain.

The figure is held-out bits per character: the mean next-character
cross-entropy divided by ln 2. Reference points: a unigram model (training
character frequencies with add-one smoothing) and a bigram model (each
character given the one before, add-one smoothing), both fitted on the
training text and scored on the same held-out characters. A model below the
bigram baseline uses more than the previous character.

`LanguageModelTask` is a `jaxdl.task.Task`: it trains with the loop every
task shares (pmap, meshes with FSDP, ensembles, fused steps, checkpoints and
exact resume). Its training split is windows `x` and the characters after
them `y`; its held-out split adds `scored`, which marks the targets that
overlapping scoring windows score, so that each held-out character is scored
once. After each evaluation it samples text from the model (`report`).
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from ml_collections import config_dict

from jaxdl import config as config_lib, data, metrics, optim, parallel, tasks
from jaxdl.errors import InputError
from jaxdl.state import TrainState, param_count
from jaxdl.task import Task

CORPORA = ("pydoc_topics",)
UNKNOWN = "\ufffd"  # how the id of characters never seen in training prints


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A text split into its training and held-out parts.

    Attributes:
      train: the training text.
      test: the held-out text.
      source: how the text was split, in words.
    """

    train: str
    test: str
    source: str


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Characters <-> ids: ids 1.. are the training characters, sorted; id 0 stands for any other character."""

    chars: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` (int32), 0 for characters outside the vocabulary."""
        index = {c: i + 1 for i, c in enumerate(self.chars)}
        return np.fromiter((index.get(c, 0) for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        """The text of `ids`; id 0 prints as U+FFFD."""
        return "".join(self.chars[i - 1] if i > 0 else UNKNOWN for i in np.asarray(ids).tolist())


def vocabulary(text: str) -> Vocabulary:
    """The vocabulary of a training text: its distinct characters."""
    return Vocabulary(tuple(sorted(set(text))))


def pydoc_topics(test_fraction: float) -> Corpus:
    """Python's help topics, every round(1 / test_fraction)-th topic (sorted by key, from the first) held out.

    Whole topics rather than the text's last part: the topics near the end
    of the alphabet are mostly the built-in types' pages, so a contiguous
    tail would test on one kind of page; every k-th topic samples them all.
    """
    from pydoc_data import topics

    every = max(1, round(1 / test_fraction))
    keys = sorted(topics.topics)
    held = [k for i, k in enumerate(keys) if i % every == 0]
    kept = [k for i, k in enumerate(keys) if i % every != 0]
    return Corpus(
        train="\n".join(topics.topics[k] for k in kept),
        test="\n".join(topics.topics[k] for k in held),
        source=f"pydoc_data.topics: {len(kept)} topics for training, {len(held)} held out "
               f"(every {every}th in sorted-key order: {', '.join(held)})",
    )


def text_file(path: str, test_fraction: float) -> Corpus:
    """A UTF-8 text file, its last `test_fraction` of characters held out.

    Raises:
      InputError: when the file is missing or is not UTF-8 text.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError(f"data.text_file={path!r}: no such file; expected a UTF-8 text file") from None
    except UnicodeDecodeError as err:
        raise InputError(f"data.text_file={path!r}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    cut = len(text) - int(round(len(text) * test_fraction))
    return Corpus(train=text[:cut], test=text[cut:],
                  source=f"{path}: the first {cut:,} characters for training, the last {len(text) - cut:,} held out")


def load_corpus(cfg: ml_collections.ConfigDict) -> Corpus:
    """The config's text: `data.text_file` when set, else the corpus `data.name`."""
    if cfg.data.text_file is not None:
        return text_file(cfg.data.text_file, cfg.data.test_fraction)
    return pydoc_topics(cfg.data.test_fraction)


def training_windows(ids: np.ndarray, context: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of `context + 1` characters starting every `stride`: (inputs, next characters), each (N, context)."""
    starts = np.arange(0, len(ids) - context, stride)
    rows = ids[starts[:, None] + np.arange(context + 1)]
    return rows[:, :-1], rows[:, 1:]


def scoring_windows(ids: np.ndarray, context: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows that predict every character of `ids` but the first exactly once: (inputs, targets, which to score).

    Windows of `context` inputs start every `stride` characters, the last one
    ending at the text's end. The first window scores all its targets; each
    later one only those the windows before it did not, which sit at its
    end, so after the first `context` characters each character is predicted
    from at least `context - stride + 1` characters (stride 1: from a full
    context). Needs `len(ids) > context`.
    """
    last = len(ids) - 1 - context
    starts = [*range(0, last, stride), last]
    positions = np.asarray(starts)[:, None] + np.arange(context)
    mask = np.zeros((len(starts), context), bool)
    scored = 0  # the targets up to this index are scored (index 0 is never a target)
    for row, start in enumerate(starts):
        mask[row, scored - start:] = True
        scored = start + context
    return ids[positions], ids[positions + 1], mask


def unigram_bits(train_ids: np.ndarray, targets: np.ndarray, vocab_size: int) -> float:
    """Mean bits per character of `targets` under the training ids' frequencies with add-one smoothing."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    return float(-np.mean(np.log2(counts[targets] / counts.sum())))


def bigram_bits(train_ids: np.ndarray, previous: np.ndarray, targets: np.ndarray, vocab_size: int) -> float:
    """Mean bits per character of `targets` given the `previous` ones, from training pair counts with add-one smoothing."""
    pairs = np.zeros((vocab_size, vocab_size))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1.0)
    pairs += 1.0
    return float(-np.mean(np.log2(pairs[previous, targets] / pairs[previous].sum(axis=1))))


class Block(nn.Module):
    """A pre-LayerNorm Transformer block: x + attention(norm(x)), then x + mlp(norm(x)).

    Attributes:
      num_heads: attention heads; they split the width.
      mlp_ratio: the MLP's hidden width over the model's.
      dropout: the rate after attention and MLP, and on attention weights.
    """

    num_heads: int
    mlp_ratio: int = 4
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, *, train: bool = False) -> jax.Array:
        width = x.shape[-1]
        h = nn.LayerNorm(name="attention_norm")(x)
        h = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, dropout_rate=self.dropout, deterministic=not train, name="attention"
        )(h, mask=mask)
        x = x + nn.Dropout(self.dropout, deterministic=not train)(h)
        h = nn.LayerNorm(name="mlp_norm")(x)
        h = nn.gelu(nn.Dense(self.mlp_ratio * width, name="mlp_in")(h))
        h = nn.Dense(width, name="mlp_out")(h)
        return x + nn.Dropout(self.dropout, deterministic=not train)(h)


class CharTransformer(nn.Module):
    """A decoder-only Transformer over character ids: (N, T) ids, T <= context -> (N, T, vocab_size) logits.

    Position t's logits predict the character after t from the characters
    0..t only: a causal mask hides the later ones.

    Attributes:
      vocab_size: the number of character ids.
      context: the most characters it reads at once (position embeddings).
      embed_dim: the width.
      num_heads: attention heads per block.
      num_layers: blocks.
      mlp_ratio: each block's MLP hidden width over the width.
      dropout: the dropout rate (0: none).
    """

    vocab_size: int
    context: int = 64
    embed_dim: int = 128
    num_heads: int = 4
    num_layers: int = 2
    mlp_ratio: int = 4
    dropout: float = 0.0

    @nn.compact
    def __call__(self, tokens: jax.Array, *, train: bool = False) -> jax.Array:
        length = tokens.shape[-1]
        if length > self.context:
            raise ValueError(f"{length} characters given; the model reads at most context={self.context}")
        # Small embeddings, as in GPT-2: the residual stream starts near zero and the blocks write into it.
        init = nn.initializers.normal(stddev=0.02)
        x = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=init, name="token_embedding")(tokens)
        positions = nn.Embed(self.context, self.embed_dim, embedding_init=init, name="position_embedding")
        x = x + positions(jnp.arange(length))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        mask = nn.make_causal_mask(tokens)
        for i in range(self.num_layers):
            x = Block(self.num_heads, self.mlp_ratio, self.dropout, name=f"block_{i}")(x, mask, train=train)
        x = nn.LayerNorm(name="final_norm")(x)
        return nn.Dense(self.vocab_size, name="logits")(x)


def default_config() -> ml_collections.ConfigDict:
    """A 2-layer, 128-wide Transformer with a 64-character context on Python's help topics.

    3 epochs at batch size 32 of windows every 32 characters (1,269 steps),
    adam at 3e-3 with warmup and cosine decay: about 2.0 held-out bits per
    character in 1-3 minutes on two CPU cores (see experiments/pydoc_char_lm.py).
    """
    cfg = config_lib.base_config("language_model")
    cfg.data.name = "pydoc_topics"
    cfg.data.text_file = config_dict.placeholder(str)  # a UTF-8 text file to train on; data.name then only labels it
    cfg.data.test_fraction = 0.1  # pydoc_topics: every round(1 / this)-th topic is held out; a text file: its last part
    cfg.data.stride = config_dict.placeholder(int)  # training windows start every this many characters; None: context // 2
    cfg.data.eval_stride = config_dict.placeholder(int)  # of the held-out scoring windows (scoring_windows); None: context // 2
    cfg.model.context = 64
    cfg.model.embed_dim = 128
    cfg.model.num_heads = 4
    cfg.model.num_layers = 2
    cfg.model.mlp_ratio = 4
    cfg.model.dropout = 0.0
    cfg.train.epochs = 3
    cfg.train.batch_size = 32
    cfg.train.eval_every_epochs = 1
    cfg.train.eval_batch_size = 256  # held-out windows per forward pass: bounds evaluation's memory
    cfg.checkpoint.every_epochs = 10
    cfg.optimizer.name = "adam"
    cfg.optimizer.learning_rate = 3e-3
    cfg.optimizer.schedule = "warmup_cosine"
    cfg.optimizer.warmup_steps = 100
    cfg.optimizer.final_lr_fraction = 0.05
    cfg.optimizer.grad_clip_norm = 1.0
    cfg.sample = ml_collections.ConfigDict()
    cfg.sample.length = 300  # characters generated at each evaluation; 0: none
    cfg.sample.temperature = 0.8
    cfg.sample.prompt = config_dict.placeholder(str)  # None: the first line of the held-out text
    return cfg


def next_char_loss(model: CharTransformer, params, x: jax.Array, y: jax.Array, *, rng: jax.Array | None = None):
    """Each position's next-character cross-entropy in nats, (N, T); `rng` given: training mode (dropout)."""
    rngs = {"dropout": rng} if rng is not None else {}
    logits = model.apply({"params": params}, x, train=rng is not None, rngs=rngs)
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y)


def make_sampler(model: CharTransformer, prompt_length: int, length: int, temperature: float):
    """(params, prompt ids, rng) -> `length` generated ids, each drawn from the softmax of the logits / temperature.

    Every step reruns the model on the last `context` characters (no cache:
    the windows are short). While the text is shorter than the context, the
    ids after it in the window are placeholders that the causal mask keeps
    from the position read. The unknown-character id is never drawn.
    """
    total = max(prompt_length + length, model.context)

    def sample(params, prompt, rng):
        text = jnp.zeros(total, jnp.int32).at[:prompt_length].set(prompt)

        def step(i, text):
            filled = prompt_length + i
            window = jax.lax.dynamic_slice(text, (jnp.maximum(filled - model.context, 0),), (model.context,))
            logits = model.apply({"params": params}, window[None])[0, jnp.minimum(filled, model.context) - 1]
            logits = logits.at[0].set(-jnp.inf)
            return text.at[filled].set(jax.random.categorical(jax.random.fold_in(rng, i), logits / temperature))

        return jax.lax.fori_loop(0, length, step, text)[prompt_length:prompt_length + length]

    return jax.jit(sample)


class LanguageModelTask(Task):
    """Next-character prediction as a Task: minimise the mean cross-entropy of every real row's characters.

    A training batch is `x` (B, context) character ids, `y` (B, context)
    the characters after them, and `mask` (B,). A held-out batch also holds
    `scored` (B, context): 1 where a target is scored, so that overlapping
    scoring windows score every held-out character once (`scoring_windows`).

    Args:
      model: the CharTransformer.
      tx: the optax optimizer.
      vocab: the characters <-> ids.
      unigram_bits, bigram_bits: the baselines' held-out bits per character,
        reported beside the model's.
      prompt: the text each sample continues; sample_length: characters
        generated at each evaluation (0: none); temperature: the sampling
        temperature; sample_seed: fixes the sampling key.
    """

    name = "language_model"

    def __init__(self, model: CharTransformer, tx: optax.GradientTransformation, vocab: Vocabulary, *,
                 unigram_bits: float, bigram_bits: float, prompt: str = "", sample_length: int = 0,
                 temperature: float = 1.0, sample_seed: int = 0):
        self.model, self.tx, self.vocab = model, tx, vocab
        self.unigram_bits, self.bigram_bits = float(unigram_bits), float(bigram_bits)
        self.prompt, self.sample_length, self.temperature = prompt, int(sample_length), float(temperature)
        self._prompt_ids = vocab.encode(prompt)
        # One fixed key: every evaluation draws with the same numbers, so the samples differ only by what the model learned.
        self._sample_rng = jax.random.fold_in(jax.random.PRNGKey(sample_seed), 1)
        self._sampler = None
        self.last_sample: str | None = None  # the latest report's sample, for the headline

    # -- the protocol -----------------------------------------------------

    def init(self, rng: jax.Array) -> TrainState:
        """The initial state: the model's parameters from one half of `rng`, the run's key from the other."""
        init_rng, run_rng = jax.random.split(rng)
        params = self.model.init(init_rng, jnp.zeros((1, self.model.context), jnp.int32))["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params), rng=run_rng,
                          model_state={}, tx=self.tx, model=self.model, head="softmax",
                          input_shape=(self.model.context,))

    def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        """One update on the mean next-character cross-entropy over the real rows' characters (all devices' under pmap)."""
        # Only a model with dropout needs randomness; the key depends on the step, so a resumed run draws the same.
        rng = jax.random.fold_in(state.rng, state.step) if self.model.dropout > 0 else None
        rows = batch["mask"].astype(jnp.float32)
        tokens = jnp.sum(rows) * batch["y"].shape[1]
        real = parallel.psum(tokens)

        def objective(params):
            nats = next_char_loss(self.model, params, batch["x"], batch["y"], rng=rng)
            total = jnp.sum(nats * rows[:, None])
            return total / jnp.maximum(real, 1.0), total

        (_, total), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        grads = parallel.psum(grads)
        totals = {"loss_sum": total, "bits_per_char_sum": total / math.log(2), "count": tokens}
        return state.apply_gradients(grads, state.model_state), totals

    def eval_step(self, state: TrainState, batch: dict) -> dict:
        """The summed cross-entropy (nats) of the scored targets of the real rows, and how many there are."""
        nats = next_char_loss(self.model, state.params, batch["x"], batch["y"])
        scored = batch["scored"] if "scored" in batch else jnp.ones(nats.shape, jnp.float32)  # training windows: all
        weights = scored.astype(jnp.float32) * batch["mask"].astype(jnp.float32)[:, None]
        return {"loss_sum": jnp.sum(nats * weights), "count": jnp.sum(weights)}

    def figures(self, totals: dict) -> dict:
        """Held-out loss (nats per character) and bits per character, beside the unigram and bigram baselines."""
        out = {k: v for k, v in metrics.means(totals).items() if k == "loss"}
        out["bits_per_char"] = out["loss"] / math.log(2)
        out["unigram_bits_per_char"] = self.unigram_bits
        out["bigram_bits_per_char"] = self.bigram_bits
        return out

    def report(self, state: TrainState, step: int, writer) -> dict:
        """Generates `sample_length` characters after the prompt, shows them and appends them to samples.txt."""
        if not self.sample_length:
            return {}
        if self._sampler is None:
            self._sampler = make_sampler(self.model, len(self._prompt_ids), self.sample_length, self.temperature)
        text = self.prompt + self.vocab.decode(self._sampler(state.params, self._prompt_ids, self._sample_rng))
        self.last_sample = (f"sample after step {step} (temperature {self.temperature}; "
                            f"the prompt is {self.prompt!r}):\n{text}")
        # The header line goes to the console too, so that the sample printed there says what it is.
        writer.text(f"=== step {step}, temperature {self.temperature} ===\n{text}", file="samples.txt",
                    tag="language_model/sample")
        return {}

    def export(self, state: TrainState):
        return state.params

    def describe(self) -> str:
        m = self.model
        return (f"CharTransformer: {m.num_layers} layers, width {m.embed_dim}, {m.num_heads} heads, "
                f"context {m.context}, vocabulary {m.vocab_size}")


def _check_number(value, name: str, low: float, high: float, *, closed_high: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value
    ok = ok and (value <= high if closed_high else value < high)
    if not ok:
        raise InputError(f"{name}={value!r}: expected a number in [{low}, {high}{']' if closed_high else ')'}")
    return float(value)


SELECT = ("auto", "loss")  # lower is better for the checkpoints' and the ensemble's choice


def check(cfg: ml_collections.ConfigDict) -> None:
    """Checks the data, model and sample settings, naming the bad one."""
    if cfg.data.text_file is None and cfg.data.name not in CORPORA:
        raise InputError(f"data.name={cfg.data.name!r} is not a known text; expected one of: {', '.join(CORPORA)} "
                         "(or set data.text_file to a UTF-8 text file)")
    fraction = cfg.data.test_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
        raise InputError(f"data.test_fraction={fraction!r}: expected a number in (0, 0.5]")
    context = tasks.check_positive_int(cfg.model.context, "model.context")
    width = tasks.check_positive_int(cfg.model.embed_dim, "model.embed_dim")
    heads = tasks.check_positive_int(cfg.model.num_heads, "model.num_heads")
    if width % heads:
        raise InputError(f"model.num_heads={heads!r}: does not divide model.embed_dim={width}; "
                         "expected a divisor, as each head takes an equal share of the width")
    tasks.check_positive_int(cfg.model.num_layers, "model.num_layers")
    tasks.check_positive_int(cfg.model.mlp_ratio, "model.mlp_ratio")
    _check_number(cfg.model.dropout, "model.dropout", 0.0, 1.0, closed_high=False)
    for key in ("stride", "eval_stride"):
        stride = cfg.data[key]
        if stride is not None and (tasks.check_positive_int(stride, f"data.{key}") > context):
            raise InputError(f"data.{key}={stride!r}: larger than model.context={context}; expected at most {context}, "
                             "or characters would be skipped")
    if isinstance(cfg.sample.length, bool) or not isinstance(cfg.sample.length, int) or cfg.sample.length < 0:
        raise InputError(f"sample.length={cfg.sample.length!r}: expected a whole number of characters, 0 or more")
    temperature = cfg.sample.temperature
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
        raise InputError(f"sample.temperature={temperature!r}: expected a number > 0")
    if cfg.sample.prompt is not None and not cfg.sample.prompt:
        raise InputError("sample.prompt='': expected at least one character (None: the held-out text's first line)")
    for key, value in (("ensemble.select", cfg.ensemble.select), ("checkpoint.best_metric", cfg.checkpoint.best_metric)):
        if value not in SELECT:
            raise InputError(f"{key}={value!r}: a language model is judged by its held-out loss; expected one of: "
                             f"{', '.join(SELECT)}")


def build(cfg: ml_collections.ConfigDict, corpus: Corpus | None = None) -> tasks.Built:
    """The language-model task of a config, with its training and held-out windows.

    Args:
      cfg: the config (`default_config()` and its overrides).
      corpus: the text to use instead of loading the config's (for tests).

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    check(cfg)
    corpus = load_corpus(cfg) if corpus is None else corpus
    context = cfg.model.context
    stride = cfg.data.stride or max(1, context // 2)
    eval_stride = cfg.data.eval_stride or max(1, context // 2)
    for part, text in (("training", corpus.train), ("held-out", corpus.test)):
        if len(text) <= context:
            raise InputError(f"model.context={context}: the {part} text has only {len(text)} characters; "
                             f"expected a context shorter than that")
    vocab = vocabulary(corpus.train)
    train_ids, test_ids = vocab.encode(corpus.train), vocab.encode(corpus.test)
    x_train, y_train = training_windows(train_ids, context, stride)
    x_test, y_test, scored = scoring_windows(test_ids, context, eval_stride)
    train = data.Examples(x=x_train, y=y_train)
    test = data.Examples(x=x_test, y=y_test, scored=scored.astype(np.float32))
    unseen = sorted(set(corpus.test) - set(vocab.chars))
    unigram = unigram_bits(train_ids, test_ids[1:], vocab.size)
    bigram = bigram_bits(train_ids, test_ids[:-1], test_ids[1:], vocab.size)
    model = CharTransformer(vocab_size=vocab.size, context=context, embed_dim=cfg.model.embed_dim,
                            num_heads=cfg.model.num_heads, num_layers=cfg.model.num_layers,
                            mlp_ratio=cfg.model.mlp_ratio, dropout=float(cfg.model.dropout))
    steps = tasks.steps_per_epoch(cfg, len(train))
    tx = optim.from_config(cfg, total_steps=steps * cfg.train.epochs)
    prompt = cfg.sample.prompt if cfg.sample.prompt is not None else corpus.test.split("\n", 1)[0][:context] + "\n"
    task = LanguageModelTask(model, tx, vocab, unigram_bits=unigram, bigram_bits=bigram, prompt=prompt,
                             sample_length=cfg.sample.length, temperature=float(cfg.sample.temperature),
                             sample_seed=cfg.seed)
    held_out = len(test_ids) - 1  # every held-out character but the first is scored once

    def headline(summary: dict) -> str:
        line = (f"held-out bits per character {summary['eval_bits_per_char']:.3f} (unigram baseline "
                f"{summary['eval_unigram_bits_per_char']:.3f}, bigram {summary['eval_bigram_bits_per_char']:.3f}) "
                f"on {held_out:,} held-out characters; {summary['steps']} steps in "
                f"{summary['wall_seconds']:.1f} s")
        return line + ("\n" + task.last_sample if task.last_sample else "")

    count = param_count(jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, context), jnp.int32)))["params"])
    members = f"an ensemble of {cfg.ensemble.size} " if cfg.ensemble.size > 1 else ""
    description = (
        f"{corpus.source}\n{len(corpus.train):,} training / {len(corpus.test):,} held-out characters; "
        f"{vocab.size - 1} distinct training characters + 1 id for unseen ones "
        f"(held-out characters never seen in training: {int(np.sum(test_ids == 0))}, of {len(unseen)} kinds); "
        f"{len(x_train):,} training windows of {context + 1} characters every {stride}; "
        f"held-out scored in windows every {eval_stride}\n"
        f"{members}CharTransformer: {cfg.model.num_layers} layers, width {cfg.model.embed_dim}, "
        f"{cfg.model.num_heads} heads, context {context}, MLP x{cfg.model.mlp_ratio} ({count:,} parameters"
        f"{' each' if members else ''}); {cfg.optimizer.name}, next-character cross-entropy, {cfg.train.epochs} "
        f"epochs of {steps} steps at batch size {cfg.train.batch_size}; held-out baselines: unigram {unigram:.3f}, "
        f"bigram {bigram:.3f} bits/char"
    )
    info = data.DatasetInfo(
        name=cfg.data.name, num_examples=len(train) + len(test), feature_shape=(context,), num_classes=vocab.size,
        class_names=(UNKNOWN, *vocab.chars), description=corpus.source,
    )
    return tasks.Built(task=task, splits=data.Splits(train=train, test=test, info=info), description=description,
                       select="loss", headline=headline)
