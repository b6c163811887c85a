"""The character-level Transformer language model: shapes, parameter count, causality, training, bits per character."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import EXPERIMENTS

from jaxdl import cli, metrics
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator
from jaxdl.task import check as check_task
from jaxdl.tasks import language_model as lm
from jaxdl.writers import ReportWriter

TINY = dict(vocab_size=7, context=8, embed_dim=16, num_heads=2, num_layers=2, mlp_ratio=3)


def tiny_params(model, seed=0):
    return jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.zeros((1, model.context), jnp.int32))["params"]


def tiny_config(**model):
    cfg = lm.default_config()
    cfg.model.context = 8
    cfg.model.embed_dim = 16
    cfg.model.num_heads = 2
    cfg.model.num_layers = 1
    cfg.train.batch_size = 8
    cfg.optimizer.warmup_steps = 0
    cfg.optimizer.schedule = "constant"
    cfg.optimizer.learning_rate = 1e-2
    cfg.sample.length = 20
    for key, value in model.items():
        cfg.model[key] = value
    return cfg


SMALL_TEXT = lm.Corpus(train="the cat sat on the mat. " * 20, test="the rat sat on the hat. ", source="a test text")


def test_logits_have_one_row_per_position_and_character():
    model = lm.CharTransformer(**TINY)
    params = tiny_params(model)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (3, 8), 0, 7)
    assert jax.eval_shape(model.apply, {"params": params}, tokens).shape == (3, 8, 7)
    assert jax.eval_shape(model.apply, {"params": params}, tokens[:, :5]).shape == (3, 5, 7)  # shorter than the context
    with pytest.raises(ValueError, match="context=8"):
        model.apply({"params": params}, jnp.zeros((1, 9), jnp.int32))


def test_parameter_count_matches_the_formula():
    v, c, e, layers, r = 7, 8, 16, 2, 3
    per_block = (
        2 * 2 * e  # two LayerNorms: scale and bias
        + 4 * (e * e + e)  # query, key, value and output projections, with biases
        + (e * r * e + r * e) + (r * e * e + e)  # the MLP's two layers
    )
    expected = v * e + c * e + layers * per_block + 2 * e + (e * v + v)
    params = tiny_params(lm.CharTransformer(**TINY))
    assert sum(np.size(p) for p in jax.tree.leaves(params)) == expected == 5_895


def test_attention_is_causal():
    model = lm.CharTransformer(**TINY)
    params = tiny_params(model)
    apply = jax.jit(model.apply)
    tokens = jnp.array([[1, 2, 3, 4, 5, 6, 1, 2]])
    before = apply({"params": params}, tokens)
    for t in (0, 3, 7):
        changed = tokens.at[0, t].set((tokens[0, t] + 1) % 7)
        after = apply({"params": params}, changed)
        np.testing.assert_array_equal(after[0, :t], before[0, :t])  # earlier positions do not see token t
        assert not np.allclose(after[0, t], before[0, t])  # position t does


def built_task(cfg=None, corpus=SMALL_TEXT):
    built = lm.build(cfg if cfg is not None else tiny_config(), corpus=corpus)
    return built, built.task, jax.jit(built.task.init)(jax.random.PRNGKey(0))


def train_batch(built, rows=8, real=None):
    batch = built.splits.train.read(np.arange(rows))
    mask = np.zeros(rows, np.float32)
    mask[: rows if real is None else real] = 1.0
    return {**batch, "mask": mask}


def test_the_task_passes_the_protocol_checks():
    built, task, _ = built_task()
    batch = train_batch(built)
    test_batch = {**built.splits.test.read(np.arange(4)), "mask": np.ones(4, np.float32)}
    assert set(test_batch) == {"x", "y", "scored", "mask"}
    _, totals = check_task(task, batch, eval_batch=test_batch)
    assert set(totals) == {"loss_sum", "bits_per_char_sum", "count"}


def test_a_few_training_steps_reduce_the_loss():
    built, task, state = built_task()
    step = jax.jit(task.train_step)
    batch = train_batch(built)
    losses = []
    for _ in range(15):
        state, totals = step(state, batch)
        figures = metrics.means(jax.device_get(totals))
        losses.append(figures["loss"])
    assert float(totals["count"]) == 8 * 8  # every character of every real row
    assert losses[-1] < 0.7 * losses[0]
    assert figures["bits_per_char"] == pytest.approx(losses[-1] / math.log(2), rel=1e-6)


def test_padding_rows_change_neither_the_update_nor_the_totals():
    built, task, state = built_task()
    step = jax.jit(task.train_step)
    padded = train_batch(built, rows=8, real=5)
    other = {**padded, "x": padded["x"].copy(), "y": padded["y"].copy()}
    other["x"][5:], other["y"][5:] = 3, 4  # whatever the padding rows hold
    after, totals = step(state, padded)
    after_other, totals_other = step(state, other)
    for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(after_other.params)):
        np.testing.assert_array_equal(a, b)
    assert jax.device_get(totals) == jax.device_get(totals_other)
    assert float(totals["count"]) == 5 * 8  # the real rows' characters
    nats = lm.next_char_loss(state.model, state.params, padded["x"][:5], padded["y"][:5])
    assert float(totals["loss_sum"]) == pytest.approx(float(nats.sum()), rel=1e-5)


def test_dropout_draws_from_the_step_so_a_step_is_repeatable():
    built, task, state = built_task(tiny_config(dropout=0.3))
    step = jax.jit(task.train_step)
    batch = train_batch(built)
    first, second = step(state, batch)[1]["loss_sum"], step(state, batch)[1]["loss_sum"]
    assert first == second
    plain = jax.jit(lambda p: lm.next_char_loss(state.model, p, batch["x"], batch["y"]).sum())(state.params)
    assert abs(float(first) - float(plain)) > 1e-3  # dropout was on in training


def test_training_windows_pair_each_input_with_the_next_character():
    x, y = lm.training_windows(np.arange(20, dtype=np.int32), context=6, stride=3)
    assert x.shape == y.shape == (5, 6)  # starts 0, 3, 6, 9, 12: the last ends at character 18 < 20
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x[:, 0], [0, 3, 6, 9, 12])


@pytest.mark.parametrize("length, context, stride", [(20, 6, 3), (7, 6, 3), (30, 8, 1), (25, 8, 8)])
def test_scoring_windows_predict_every_character_but_the_first_once(length, context, stride):
    ids = np.arange(length, dtype=np.int32)
    x, y, mask = lm.scoring_windows(ids, context, stride)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(np.sort(y[mask]), np.arange(1, length))
    seen = np.broadcast_to(np.arange(1, context + 1), mask.shape)  # characters each position reads
    late = y >= context  # after the first window's targets
    assert (seen[mask & late] >= context - stride + 1).all()


def test_baselines_on_a_hand_checked_example():
    vocab = lm.vocabulary("aab")
    assert vocab.chars == ("a", "b") and vocab.size == 3  # id 0: never seen in training
    train, test = vocab.encode("aab"), vocab.encode("abz")
    np.testing.assert_array_equal(test, [1, 2, 0])
    assert vocab.decode(test) == "ab" + lm.UNKNOWN
    # Add-one counts: a 2+1, b 1+1, unseen 0+1, of 6. Targets "bz": -(log2(2/6) + log2(1/6)) / 2.
    assert lm.unigram_bits(train, test[1:], vocab.size) == pytest.approx((math.log2(3) + math.log2(6)) / 2)
    # Pairs in "aab": aa, ab; add-one rows: after a [1, 2, 2] of 5, after b [1, 1, 1] of 3.
    # Targets b after a (2/5) and z (id 0) after b (1/3).
    expected = -(math.log2(2 / 5) + math.log2(1 / 3)) / 2
    assert lm.bigram_bits(train, test[:-1], test[1:], vocab.size) == pytest.approx(expected)


def test_held_out_bits_per_character_is_the_mean_cross_entropy_over_ln2():
    # 12 held-out characters, context 8, scoring stride 1: each target after the 8th is read from the 8 before it.
    corpus = lm.Corpus(train=SMALL_TEXT.train, test="the bat sat.", source="a test text")
    cfg = tiny_config()
    cfg.data.eval_stride = 1
    built, task, state = built_task(cfg, corpus)
    # Batches of 3 windows: the last one padded, its padding rows masked out.
    figures = Evaluator(task, batch_size=3)(state, built.splits.test)
    vocab = lm.vocabulary(corpus.train)
    ids = vocab.encode(corpus.test)
    assert (ids == 0).sum() == 1  # "b" never appears in training
    apply = jax.jit(state.model.apply)
    nats = []
    for t in range(1, len(ids)):  # one target at a time, read from up to 8 characters before it
        start = max(0, t - 8)
        logits = apply({"params": state.params}, jnp.asarray(ids[None, start:start + 8]))[0, t - 1 - start]
        nats.append(float(jax.nn.logsumexp(logits) - logits[ids[t]]))
    assert figures["bits_per_char"] == pytest.approx(np.mean(nats) / math.log(2), rel=1e-5)
    assert figures["loss"] == pytest.approx(np.mean(nats), rel=1e-5)
    unigram = lm.unigram_bits(vocab.encode(corpus.train), ids[1:], vocab.size)
    assert figures["unigram_bits_per_char"] == pytest.approx(unigram)
    bigram = lm.bigram_bits(vocab.encode(corpus.train), ids[:-1], ids[1:], vocab.size)
    assert figures["bigram_bits_per_char"] == pytest.approx(bigram)


@pytest.mark.parametrize("eval_stride", [None, 3, 8])
def test_evaluation_scores_every_held_out_character_but_the_first_once(eval_stride):
    cfg = tiny_config()
    cfg.data.eval_stride = eval_stride
    built, task, state = built_task(cfg)
    test = built.splits.test
    rows = len(test) + 2  # two padding rows, holding real windows: they must count for nothing
    indices = np.arange(rows) % len(test)
    batch = {**test.read(indices), "mask": (np.arange(rows) < len(test)).astype(np.float32)}
    totals = jax.jit(task.eval_step)(state, batch)
    assert float(totals["count"]) == len(SMALL_TEXT.test) - 1


def test_report_samples_text_and_appends_it_to_samples_txt(tmp_path):
    _, task, state = built_task()
    writer = ReportWriter(str(tmp_path))
    assert task.report(state, 1, writer) == {}
    first = task.last_sample
    assert task.report(state, 2, writer) == {}
    prompt = "the rat \n"  # the held-out text's first line, cut to the context
    body = first.split("\n", 1)[1]
    assert body.startswith(prompt) and len(body) == len(prompt) + 20 and lm.UNKNOWN not in body
    assert task.last_sample.split("\n", 1)[1] == body  # the same key at every evaluation
    written = (tmp_path / "samples.txt").read_text()
    assert written.startswith("=== step 1, temperature 0.8 ===\n" + body)
    assert "=== step 2, temperature 0.8 ===\n" + body in written
    assert ReportWriter(None).path("samples.txt") is None
    task.report(state, 3, ReportWriter(None))  # no workdir: nothing written, no error


def test_the_pydoc_corpus_holds_out_whole_topics():
    corpus = lm.pydoc_topics(0.1)
    from pydoc_data import topics

    assert len(corpus.train) + len(corpus.test) == sum(len(t) for t in topics.topics.values()) + 70 + 7  # the joins
    assert corpus.test.startswith(topics.topics["assert"]) and topics.topics["assert"] not in corpus.train


def test_a_text_file_holds_out_its_end(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("0123456789" * 10, encoding="utf-8")
    corpus = lm.text_file(str(path), 0.2)
    assert corpus.train == ("0123456789" * 10)[:80] and len(corpus.test) == 20
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(InputError, match="data.text_file"):
        lm.text_file(str(path), 0.2)


@pytest.mark.parametrize("key, value, named", [
    ("model.num_heads", 3, "model.num_heads=3"),
    ("model.dropout", 1.0, "model.dropout"),
    ("data.stride", 100, "data.stride=100"),
    ("data.name", "shakespeare", "data.name='shakespeare'"),
    ("sample.temperature", 0, "sample.temperature"),
    ("ensemble.select", "accuracy", "ensemble.select='accuracy'"),
    ("train.batch_size", 10_000, "train.batch_size=10000"),
])
def test_bad_settings_fail_before_training_naming_the_key(key, value, named):
    cfg = tiny_config()
    section, leaf = key.split(".")
    cfg[section][leaf] = value
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        lm.build(cfg, corpus=SMALL_TEXT)


def test_a_context_longer_than_the_held_out_text_is_refused():
    with pytest.raises(InputError, match="model.context=64"):
        lm.build(tiny_config(context=64), corpus=SMALL_TEXT)


def test_bad_heads_from_the_command_line_exit_with_status_2(tmp_path, capsys):
    path = os.path.join(EXPERIMENTS, "pydoc_char_lm.py")
    status = cli.main(["train", "--config", path + ":quick", "--workdir", str(tmp_path / "run"),
                       "--config.model.num_heads=5"])
    assert status == 2
    assert "model.num_heads=5" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_quick_experiment_beats_the_unigram_baseline(tmp_path, capsys):
    workdir = tmp_path / "run"
    status = cli.main(["train", "--config", os.path.join(EXPERIMENTS, "pydoc_char_lm.py") + ":quick",
                       "--workdir", str(workdir), "--quiet", "--config.parallel=single"])
    assert status == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["task"] == "language_model" and summary["dataset"] == "pydoc_topics"
    assert summary["eval_bits_per_char"] < summary["eval_unigram_bits_per_char"] - 0.5
    assert "held-out bits per character" in capsys.readouterr().out
    assert (workdir / "samples.txt").read_text().startswith(f"=== step {summary['steps']}, temperature 0.8 ===")
    assert summary["steps"] == 212  # ceil(13,527 windows / 64): the last batch padded
