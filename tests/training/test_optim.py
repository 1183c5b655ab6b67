"""The fused Adam is Adam: Keras's updates on the gradients training gives it, and the textbook ones on row-sparse
gradients with repeated rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

import keras
import tensorflow as tf

from training.optim import FusedAdam

STEPS = 7


def _draws(steps: int = STEPS):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=(50,)).astype(np.float32)
    return start, [(rng.integers(0, 50, 12), rng.normal(size=(12, 6)).astype(np.float32)) for _ in range(steps)]


def _run(optimizer: keras.optimizers.Optimizer, l2: float, steps: int = STEPS) -> list[np.ndarray]:
    """A table read through a gather, as an embedding is (with ``l2`` its gradient is dense, as with the model's
    regularised tables; without, it is row-sparse with repeated rows), and a dense vector."""
    (table0, bias0), draws = _draws(steps)
    table, bias = keras.Variable(table0, name="table"), keras.Variable(bias0, name="bias")
    optimizer.build([table, bias])

    @tf.function
    def step(rows, weights):
        with tf.GradientTape() as tape:
            picked = tf.gather(table.value, rows)
            loss = tf.reduce_sum(weights * tf.square(picked)) + tf.reduce_sum(tf.sin(bias.value))
            loss += l2 * tf.reduce_sum(tf.square(table.value))
        optimizer.apply(tape.gradient(loss, [table.value, bias.value]), [table, bias])

    for rows, weights in draws:
        step(rows, weights)
    moments = [v for v in optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert len(moments) == 4  # both moments of both variables
    return [np.asarray(v) for v in (table, bias, *moments)]


def _numpy_adam(lr: float, steps: int = STEPS) -> np.ndarray:
    (table, _bias), draws = _draws(steps)
    w = table.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (rows, weights) in enumerate(draws, start=1):
        g = np.zeros_like(w)
        np.add.at(g, rows, 2 * weights * w[rows])  # repeated rows add up
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w -= lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
    return w


@pytest.mark.parametrize("lr", [1e-3, 3e-2])
def test_fused_adam_updates_as_keras_adam_does(lr):
    fused, plain = _run(FusedAdam(lr), l2=1e-3), _run(keras.optimizers.Adam(lr), l2=1e-3)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fused[0], _run(FusedAdam(lr), l2=1e-3, steps=1)[0])  # the steps did move the table


def test_fused_adam_on_a_row_sparse_gradient_is_textbook_adam():
    # Keras's own Adam squares a sparse gradient's pieces before adding up repeated rows, so it is not the
    # reference here; training's tables are regularised, so their gradients reach the optimiser dense.
    np.testing.assert_allclose(_run(FusedAdam(3e-2), l2=0.0)[0], _numpy_adam(3e-2), rtol=1e-5, atol=1e-5)
