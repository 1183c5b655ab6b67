"""The interaction head's catalogue softmax computed once per user instead of once per rating.

For user ``u`` with logits ``s_u = p'_u . Q'^T + c`` over the whole catalogue, the weighted cross-entropy of one
of their ratings ``(u, i, w)`` is ``w * (logsumexp(s_u) - s_ui)``. Every rating of the user shares
``logsumexp(s_u)``, so a group of users' ratings costs one catalogue row per *user*:

    sum_r w_r * (lse_{u_r} - s_{u_r i_r})  =  sum_u W_u * lse_u  -  sum_r w_r * s_{u_r i_r}

with ``W_u`` the sum of the user's weights. That is the same number Keras's ``SparseCategoricalCrossentropy``
gives for the same ratings (up to float summation order); :func:`group_softmax_loss` divides it by the batch
size, as Keras divides a batch's weighted sum by its length.

Past a catalogue size (:func:`training.batches.softmax_sample_size`) the step's inputs also carry ``K`` movies
(``group_sample``: the most rated, then draws from a proposal ``q`` over the rest,
:class:`training.batches.CatalogueSample`) and each one's log weight (``group_logq``: 0 for the most rated,
``log(draws q_j)`` for a draw), and ``lse_u`` is estimated as ``logsumexp_k(s_u,j_k - group_logq_k)``, the log of an
unbiased importance-sampling estimate of the normaliser (sampled softmax, Bengio and Senecal 2008; Jean et al.
2015): ``U x K`` logits instead of ``U x N``.
The log of an unbiased estimate is biased low by about half its relative variance; its gradient is the
self-normalised importance-weighted softmax, consistent as ``K`` grows.
"""

from __future__ import annotations

import keras
from keras import ops


def group_softmax_loss(rank_user, rank_items, x: dict, batch_size: int):
    """Mean-over-``batch_size`` weighted softmax cross-entropy of a user group (inputs ``group_*``)."""
    users, pos, items, w = x["group_users"], x["group_pos"], x["group_items"], x["group_weights"]
    p = rank_user(users)  # (U, d)
    if "group_sample" in x:  # (U,): each row's log-normaliser estimated from the step's draw of K movies
        lse = ops.logsumexp(rank_items.logits_of(p, x["group_sample"]) - x["group_logq"], axis=-1)
    else:
        lse = ops.logsumexp(rank_items(p), axis=-1)  # (U,): one catalogue row per user
    chosen = ops.squeeze(rank_items(ops.take(p, pos, axis=0), items), -1)  # (R,): s_ui of each rating
    total = ops.sum(w * (ops.take(lse, pos, axis=0) - chosen))
    return total / float(batch_size)


class UserSoftmaxTrainer(keras.Model):
    """Trains a pairwise model (:func:`training.models.build_model`): MSE on the step's rating batch and the
    catalogue softmax on the step's user group, weighted as ``compile(loss_weights=...)`` would weight them,
    plus the layers' regularisation; both heads see every rating once per epoch."""

    def __init__(
        self, model: keras.Model, rank_weight: float, batch_size: int, user_lr_scale: float = 1.0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.pairwise = model
        self.rating_model = keras.Model(model.input, model.output["rating"], name=f"{model.name}_rating")
        self.rank_user = model.get_layer("rank_user_embedding")
        self.rank_items = model.get_layer("rank_items")
        self.rank_weight, self.batch_size = float(rank_weight), int(batch_size)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "rating_loss", "interaction_loss")}
        self.user_lr_scale = float(user_lr_scale)
        self.user_table = self.rank_user.embeddings
        self.user_optimizer = None
        if self.user_lr_scale != 1.0:
            from training.optim import FusedAdam

            self.user_optimizer = FusedAdam(1e-3)
            self.user_optimizer.build([self.user_table])

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training: bool = False):
        return self.pairwise({k: v for k, v in x.items() if not k.startswith("group_")}, training=training)

    def losses_of(self, x: dict, y: dict, training: bool = True):
        """(total, rating loss, interaction loss) of one step's batch."""
        pair = {k: v for k, v in x.items() if not k.startswith("group_")}
        pred = ops.squeeze(self.rating_model(pair, training=training), -1)
        rating = ops.mean(ops.square(ops.cast(y["rating"], pred.dtype) - pred))
        interaction = group_softmax_loss(self.rank_user, self.rank_items, x, self.batch_size)
        total = rating + self.rank_weight * interaction
        if self.losses:
            total = total + ops.sum(self.losses)
        return total, rating, interaction

    def train_step(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            total, rating, interaction = self.losses_of(x, y, training=True)
        weights = self.trainable_weights
        grads = tape.gradient(total, weights)
        if self.user_optimizer is None:
            self.optimizer.apply_gradients(zip(grads, weights, strict=True))
        else:
            key = id(self.user_table)
            rest = [(g, w) for g, w in zip(grads, weights, strict=True) if id(w) != key]
            mine = [(g, w) for g, w in zip(grads, weights, strict=True) if id(w) == key]
            self.optimizer.apply_gradients(rest)
            self.user_optimizer.learning_rate.assign(self.optimizer.learning_rate * self.user_lr_scale)
            self.user_optimizer.apply_gradients(mine)
        for name, value in (("loss", total), ("rating_loss", rating), ("interaction_loss", interaction)):
            self.trackers[name].update_state(value)
        return {n: t.result() for n, t in self.trackers.items()}
