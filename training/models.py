"""The residual matrix-factorisation model family (Keras 3).

Every variant maps ``(user, item)`` index pairs to two outputs:

* ``rating``: the predicted explicit rating, trained with MSE on observed ratings;
* ``interaction``: a logit that the user picks the item among all items, trained with a full
  softmax over the catalogue on observed pairs (no sampled negatives: every other item is a
  negative). Top-N lists are ranked by it: an MSE-trained rating alone ranks obscure,
  rarely-rated movies too high (docs/training.md, "Models").

Variants of the rating output (mu = global mean, b = biases, p/q = user/item embeddings,
f = the deep branch Dense(400)-ReLU-Dropout-Dense(100)-BatchNorm-ReLU-Dense(1) on [p; q]):

* ``residual``: mu + b_u + b_i + p.q + f([p; q])
* ``hybrid``:   mu + b_u + b_i + alpha * p.q + (1 - alpha) * f([p; q]); alpha fixed or learned
* ``mf``:       mu + b_u + b_i + p.q
* ``ncf``:      mu + b_u + b_i + f([p; q])

The interaction logit is ``p'.q' + c_i`` on its own user/item embeddings (``rank_dim``) so the
catalogue can be ranked exactly with one matrix product at serving time. The two heads share no
parameters; they are trained in one pass over the same batches and early-stopped separately.

:func:`build_model` returns the pairwise model that is saved and exported;
:func:`training_model` wraps the same layers with a catalogue-wide interaction output for the
softmax loss.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from training.config import MODEL_KINDS, ModelConfig

__all__ = ["MODEL_KINDS", "ModelConfig", "build_model", "training_model"]


@keras.saving.register_keras_serializable(package="recsys")
class Dot(layers.Layer):
    """Row-wise dot product of two (batch, dim) tensors -> (batch, 1)."""

    def call(self, a, b):
        return ops.sum(a * b, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="recsys")
class Blend(layers.Layer):
    """alpha * a + (1 - alpha) * b with alpha = sigmoid(w); w trainable unless alpha is fixed."""

    def __init__(self, alpha: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def build(self, input_shape):
        init = 0.0 if self.alpha is None else float(self.alpha)
        init = min(max(init, 1e-6), 1 - 1e-6) if self.alpha is not None else 0.5
        logit = float(__import__("math").log(init / (1 - init)))
        self.w = self.add_weight(
            name="alpha_logit",
            shape=(),
            initializer=keras.initializers.Constant(logit),
            trainable=self.alpha is None,
        )

    def call(self, a, b):
        alpha = ops.sigmoid(self.w)
        return alpha * a + (1.0 - alpha) * b

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="recsys")
class ItemTower(layers.Layer):
    """Item side of the interaction head: factors ``q'`` and biases ``c``.

    ``call(p, item)`` gives the pairwise logit (batch, 1); ``call(p)`` the logits of every item
    (batch, n_items), used by the softmax loss and by catalogue scoring.
    """

    def __init__(self, n_items: int, dim: int, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_items, self.dim, self.l2 = n_items, dim, l2

    def build(self, input_shape):
        reg = keras.regularizers.L2(self.l2) if self.l2 > 0 else None
        self.q = self.add_weight(
            name="factors", shape=(self.n_items, self.dim), initializer="random_normal", regularizer=reg
        )
        self.c = self.add_weight(name="bias", shape=(self.n_items,), initializer="zeros")

    def call(self, p, item=None):
        if item is None:
            return ops.matmul(p, ops.transpose(self.q)) + self.c
        q = ops.take(self.q, item, axis=0)
        return ops.sum(p * q, axis=-1, keepdims=True) + ops.expand_dims(ops.take(self.c, item, axis=0), -1)

    def logits_of(self, p, items):
        """Logits of the movies ``items`` (K,) for every row of ``p``: (batch, K)."""
        return ops.matmul(p, ops.transpose(ops.take(self.q, items, axis=0))) + ops.take(self.c, items, axis=0)

    def get_config(self):
        return {**super().get_config(), "n_items": self.n_items, "dim": self.dim, "l2": self.l2}


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    """L1, L2, both (elastic net) or none."""
    if l1 > 0 and l2 > 0:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1 > 0:
        return keras.regularizers.L1(l1)
    return keras.regularizers.L2(l2) if l2 > 0 else None


def _embedding(n: int, dim: int, l2: float, name: str, init: str = "he_normal", l1: float = 0.0) -> layers.Embedding:
    reg = _regularizer(l1, l2)
    return layers.Embedding(n, dim, embeddings_initializer=init, embeddings_regularizer=reg, name=name)


def _deep_branch(x, cfg: ModelConfig):
    """f([p; q]): Dense(h0)-ReLU-Dropout, then Dense(h_i)-[BatchNorm]-ReLU, then Dense(1)."""
    reg = _regularizer(cfg.dense_l1 * cfg.reg_scale, cfg.dense_l2 * cfg.reg_scale)
    for depth, width in enumerate(cfg.hidden):
        x = layers.Dense(width, kernel_initializer="he_normal", kernel_regularizer=reg, name=f"deep_dense_{depth}")(x)
        if depth == 0:
            x = layers.ReLU(name="deep_relu_0")(x)
            x = layers.Dropout(cfg.dropout, name="deep_dropout")(x)
        else:
            if cfg.batchnorm:
                x = layers.BatchNormalization(name=f"deep_bn_{depth}")(x)
            x = layers.ReLU(name=f"deep_relu_{depth}")(x)
    # Zero-initialised so the model starts as plain MF and the branch learns a residual (Goyal et al. 2017).
    return layers.Dense(1, kernel_initializer="zeros", name="deep_out")(x)


def build_model(n_users: int, n_items: int, cfg: ModelConfig, item_features=None) -> keras.Model:
    """Build an uncompiled model with inputs ``user``/``item`` (int32) and outputs ``rating``/``interaction``.

    With ``cfg.item_features`` the deep branch also reads ``item_features`` ([n_items, F], from
    :func:`training.features.encode_items`), held in a frozen embedding so the model stays ``(user, item)``.
    """
    deep_features = cfg.item_features and cfg.kind in ("residual", "hybrid", "ncf")
    if deep_features and (item_features is None or len(item_features) != n_items):
        raise ValueError("item_features=True needs an [n_items, F] feature matrix (movie metadata)")
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    inputs = {"user": user, "item": item}

    s = cfg.reg_scale  # every regulariser's strength times this (training.fit sets it from the data's size)
    p = _embedding(n_users, cfg.dim, cfg.l2 * s, "user_embedding", l1=cfg.l1 * s)(user)
    q = _embedding(n_items, cfg.dim, cfg.l2 * s, "item_embedding", l1=cfg.l1 * s)(item)
    b_u = _embedding(n_users, 1, cfg.bias_l2 * s, "user_bias", init="zeros")(user)
    b_i = _embedding(n_items, 1, cfg.bias_l2 * s, "item_bias", init="zeros")(item)

    terms = [b_u, b_i]
    mf = Dot(name="mf")(p, q)
    if cfg.kind in ("residual", "hybrid", "ncf"):
        parts = [p, q]
        if cfg.implicit_inputs and cfg.rank_dim > 0:
            # Frozen copies of the interaction head's factors (what a user rated, SVD++-style), synced from the
            # head after each epoch by the trainer; copies keep the two heads' parameters and snapshots apart.
            copy = lambda n, nm: layers.Embedding(n, cfg.rank_dim, trainable=False, name=nm)  # noqa: E731
            parts += [copy(n_users, "implicit_user")(user), copy(n_items, "implicit_item")(item)]
        features = None
        if cfg.item_features:
            features = layers.Embedding(n_items, item_features.shape[1], trainable=False, name="item_features")
            parts.append(features(item))
        if cfg.time_feature:
            # last in the concatenation: scoring.from_keras folds its kernel row into the first layer's bias
            inputs["time"] = keras.Input(shape=(), dtype="float32", name="time")
            parts.append(layers.Reshape((1,), name="time_column")(inputs["time"]))
        deep = _deep_branch(layers.Concatenate(name="deep_input")(parts), cfg)
        if features is not None:
            features.set_weights([np.asarray(item_features, np.float32)])
    if cfg.kind == "residual":
        terms += [mf, deep]
    elif cfg.kind == "hybrid":
        terms.append(Blend(cfg.alpha, name="blend")(mf, deep))
    elif cfg.kind == "mf":
        terms.append(mf)
    else:  # ncf
        terms.append(deep)
    total = layers.Add(name="rating_sum")(terms)
    rating = layers.Rescaling(1.0, offset=cfg.global_mean, name="rating")(total)

    outputs = {"rating": rating}
    if cfg.rank_dim > 0:
        pr = _embedding(n_users, cfg.rank_dim, cfg.rank_l2 * s, "rank_user_embedding", init="random_normal")(user)
        outputs["interaction"] = ItemTower(n_items, cfg.rank_dim, cfg.rank_l2 * s, name="rank_items")(pr, item)
    return keras.Model(inputs=inputs, outputs=outputs, name=f"recsys_{cfg.kind}")


def training_model(model: keras.Model) -> keras.Model:
    """The same layers with the interaction output over the whole catalogue (for the softmax loss)."""
    outputs = {"rating": model.output["rating"]}
    if "interaction" in model.output:
        pr = model.get_layer("rank_user_embedding").output
        outputs["interaction"] = model.get_layer("rank_items")(pr)
    return keras.Model(inputs=model.input, outputs=outputs, name=f"{model.name}_train")
