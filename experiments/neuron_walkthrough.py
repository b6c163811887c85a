"""The tutorial's worked example, run through jaxdl's own layers: a neuron, a layer, two layers, one backpropagation step.

Every number printed comes from the library (`jaxdl.MLP`'s Dense layers,
`jaxdl.activations`, the loss and `jaxdl.tasks.supervised.Supervised.train_step`), and is
checked against the same quantity written out by hand.

Run:
    python experiments/neuron_walkthrough.py
Result: prints each quantity; the hand-written and library values agree to
float32 rounding, and one gradient step lowers the example's loss.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdl
from jaxdl import activations, losses, modules
from jaxdl.tasks.supervised import Supervised

X = np.array([[0.5, -1.2, 3.0]], np.float32)  # one example with three inputs
LABEL = np.array([1])  # its class, for the backpropagation step
W1 = np.array([[0.4, -0.3, 0.2], [0.7, 0.1, -0.5], [-0.2, 0.6, 0.3]], np.float32)  # inputs x hidden neurons
B1 = np.array([0.1, -0.2, 0.05], np.float32)
W2 = np.array([[0.8], [-0.6], [0.3]], np.float32)  # hidden x output
B2 = np.array([0.2], np.float32)
LEARNING_RATE = 0.5


def walk(show=print) -> dict:
    """Runs the walkthrough, printing with `show`; returns the library's and the hand-written quantities."""
    sigmoid, softmax, relu = (activations.get(name) for name in ("sigmoid", "softmax", "relu"))
    model = jaxdl.MLP(hidden=(3,), activation="sigmoid", num_outputs=1, output_activation="sigmoid")
    params = {"hidden_0": {"kernel": W1, "bias": B1}, "output": {"kernel": W2, "bias": B2}}
    out = {}

    show("1. One neuron: z = w . x + b, and it fires when z passes a threshold (0 here)")
    neuron = jaxdl.MLP(hidden=(), num_outputs=1, output_activation="identity")  # a single Dense unit
    z_neuron = float(neuron.apply({"params": {"output": {"kernel": W1[:, :1], "bias": B1[:1]}}}, X)[0, 0])
    z_hand = float(X[0] @ W1[:, 0] + B1[0])
    out["neuron"] = (z_neuron, z_hand)
    show(f"   w = {W1[:, 0]}, x = {X[0]}, b = {B1[0]:.2f}")
    show(f"   z = {z_hand:.4f} (by hand) = {z_neuron:.4f} (jaxdl's layer): fires: {z_neuron > 0}")

    show("2. A layer of three neurons: z = x W + b, then an activation for each")
    layer = jaxdl.MLP(hidden=(), num_outputs=3, output_activation="identity")
    hidden_z = np.asarray(layer.apply({"params": {"output": {"kernel": W1, "bias": B1}}}, X)[0])
    out["layer_z"] = (hidden_z, X[0] @ W1 + B1)
    out["sigmoid"] = (np.asarray(sigmoid(hidden_z)), 1 / (1 + np.exp(-hidden_z)))
    out["softmax"] = (np.asarray(softmax(hidden_z)), np.exp(hidden_z) / np.exp(hidden_z).sum())
    show(f"   z       = {np.round(hidden_z, 4)}")
    show(f"   sigmoid = {np.round(out['sigmoid'][0], 4)} (each in (0, 1))")
    show(f"   softmax = {np.round(out['softmax'][0], 4)} (sums to {out['softmax'][0].sum():.4f})")
    show(f"   relu    = {np.round(np.asarray(relu(hidden_z)), 4)}")

    show("3. Layers feed forward: the hidden layer's sigmoid activations are the output neuron's inputs")
    h = out["sigmoid"][1]
    logit_hand = float(h @ W2[:, 0] + B2[0])
    probability = float(model.apply({"params": params}, X)[0, 0])
    out["forward"] = (probability, 1 / (1 + np.exp(-logit_hand)))
    show(f"   output z = h . w2 + b2 = {logit_hand:.4f}; sigmoid(z) = P(class 1) = {probability:.4f}")

    show("4. One backpropagation step (binary cross-entropy, gradient descent with learning rate "
         f"{LEARNING_RATE})")
    loss = losses.get("binary_crossentropy")
    task = Supervised(modules.wrap(model), loss, optax.sgd(LEARNING_RATE), input_shape=(3,))
    state = task.init(jax.random.PRNGKey(0))
    state = state.replace(params=jax.tree.map(jnp.asarray, params), opt_state=state.tx.init(params))
    batch = {"x": X, "y": LABEL, "mask": np.ones(1, np.float32)}
    loss_before = -np.log(probability)
    # By hand, the chain rule from the loss back to each weight:
    d_logit = probability - LABEL[0]  # dL/dz for sigmoid + cross-entropy
    grad_w2 = h[:, None] * d_logit
    d_h = W2[:, 0] * d_logit * h * (1 - h)  # through the output weights and the sigmoid's slope
    grad_w1 = X[0][:, None] * d_h[None, :]
    show(f"   loss = -log P(class 1) = {loss_before:.4f}; dL/dz_out = p - y = {d_logit:.4f}")
    show(f"   dL/dW2 = h * dL/dz_out = {np.round(grad_w2[:, 0], 4)}")
    show(f"   dL/dW1 = x (outer) dL/dz_hidden = \n{np.round(grad_w1, 4)}")
    new_state, totals = jax.jit(task.train_step)(state, batch)
    out["w2"] = (np.asarray(new_state.params["output"]["kernel"]), W2 - LEARNING_RATE * grad_w2)
    out["w1"] = (np.asarray(new_state.params["hidden_0"]["kernel"]), W1 - LEARNING_RATE * grad_w1)
    out["loss"] = (float(totals["loss_sum"]), loss_before)
    loss_after = -np.log(float(model.apply({"params": new_state.params}, X)[0, 0]))
    out["loss_after"] = loss_after
    show(f"   jaxdl's train step: new W2 = {np.round(out['w2'][0][:, 0], 4)} (W2 - lr * dL/dW2 by hand: "
         f"{np.round(out['w2'][1][:, 0], 4)})")
    show(f"   loss after the step: {loss_after:.4f} (was {loss_before:.4f})")
    return out


def main() -> int:
    results = walk()
    for name, value in results.items():
        if isinstance(value, tuple):
            np.testing.assert_allclose(value[0], value[1], rtol=1e-5, atol=1e-6, err_msg=name)
    assert results["loss_after"] < results["loss"][1]
    print("every library value equals its hand-written counterpart; the step lowered the loss")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
