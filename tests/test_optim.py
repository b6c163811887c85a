import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import optim
from jaxdl.errors import InputError


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("schedule", optim.SCHEDULES)
def test_every_optimizer_and_schedule_minimises_a_quadratic(name, schedule):
    tx = optim.build({"name": name, "learning_rate": 0.05, "schedule": schedule, "warmup_steps": 10}, total_steps=200)
    params = {"w": jnp.array([3.0, -2.0])}
    opt_state = tx.init(params)
    grad_fn = jax.grad(lambda p: jnp.sum(p["w"] ** 2))
    for _ in range(200):
        updates, opt_state = tx.update(grad_fn(params), opt_state, params)
        params = optax.apply_updates(params, updates)
    assert float(jnp.sum(params["w"] ** 2)) < 0.5 * 13.0


def test_schedules():
    assert optim.learning_rate_schedule({**optim.DEFAULTS, "learning_rate": 0.1}, total_steps=100) == 0.1
    cosine = optim.learning_rate_schedule({**optim.DEFAULTS, "schedule": "cosine", "learning_rate": 0.1}, total_steps=100)
    np.testing.assert_allclose([cosine(0), cosine(50), cosine(100)], [0.1, 0.05, 0.0], atol=1e-7)
    warm = optim.learning_rate_schedule(
        {**optim.DEFAULTS, "schedule": "warmup_cosine", "learning_rate": 0.1, "warmup_steps": 10, "final_lr_fraction": 0.1},
        total_steps=110,
    )
    np.testing.assert_allclose([warm(0), warm(5), warm(10), warm(110)], [0.0, 0.05, 0.1, 0.01], atol=1e-7)


def test_gradient_clipping_bounds_the_update():
    tx = optim.build({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0, "grad_clip_norm": 1.0}, total_steps=1)
    params = {"w": jnp.zeros(2)}
    updates, _ = tx.update({"w": jnp.array([30.0, 40.0])}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.6, -0.8], rtol=1e-6)


def test_sgd_momentum_defaults_to_0_9():
    tx = optim.build({"name": "sgd", "learning_rate": 1.0}, total_steps=2)
    params = {"w": jnp.zeros(1)}
    state = tx.init(params)
    g = {"w": jnp.ones(1)}
    _, state = tx.update(g, state, params)
    second, _ = tx.update(g, state, params)
    np.testing.assert_allclose(second["w"], [-1.9])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": "adagrad"}, "optimizer.name='adagrad' is not a known optimizer; expected one of: adam, adamw, rmsprop, sgd"),
        ({"name": "adam", "learning_rate": 0}, "optimizer.learning_rate=0: expected a finite number > 0"),
        ({"name": "adam", "schedule": "step"}, "optimizer.schedule='step' is not known; expected one of: constant, cosine"),
        ({"name": "adam", "schedule": "warmup_cosine", "warmup_steps": 500}, r"warmup_steps=500: expected an integer in \[0, 100\)"),
        ({"name": "adam", "lr": 0.1}, r"optimizer settings \['lr'\] are not known"),
    ],
)
def test_bad_optimizer_settings(settings, message):
    with pytest.raises(InputError, match=message):
        optim.build(settings, total_steps=100)
