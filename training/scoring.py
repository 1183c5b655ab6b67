"""The served ranking score, in plain numpy (no TensorFlow): the reference for export and evaluation.

score(u, i) = logit(u, i) + gamma * rating(u, i), where logit is the interaction head's
p'_u.q'_i + c_i and rating the full predicted rating (deep branch included). It is computed in two
stages, exactly as the exported ONNX graph does:

1. over every movie: logit + gamma * (b_i + w_mf * p_u.q_i), one matrix product;
2. for the top ``candidates`` (300) of stage 1 among the allowed movies: add
   gamma * (mu + b_u + w_deep * f(u, i)), the deep branch with its first layer split into a user part
   and a precomputed item part.

Stage 2 only re-orders what stage 1 found; ``bench`` reports the top-10 overlap with exact scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from contract import CANDIDATES


@dataclass
class DeepLayer:
    """A Dense (BatchNorm folded in) after the first layer; ``relu`` after it."""

    kernel: np.ndarray
    bias: np.ndarray
    relu: bool


@dataclass
class ServingWeights:
    """Every number the served score needs, float32, with users and items in index order."""

    gamma: float
    mu: float
    mf_weight: float  # 1 (residual, mf), alpha (hybrid), 0 (ncf)
    deep_weight: float  # 1 (residual, ncf), 1 - alpha (hybrid), 0 (mf)
    user_rank: np.ndarray  # [U, R] interaction factors p'
    item_rank: np.ndarray  # [N, R] q'
    item_rank_bias: np.ndarray  # [N] c
    user_mf: np.ndarray  # [U, D] p
    user_bias: np.ndarray  # [U] b_u
    item_mf: np.ndarray  # [N, D] q
    item_bias: np.ndarray  # [N] b_i
    user_implicit: np.ndarray | None = None  # [U, R] frozen copy of p' read by the deep branch
    item_implicit: np.ndarray | None = None  # [N, R]
    item_features: np.ndarray | None = None  # [N, F] genres and year (training.features), deep branch only
    deep_user_kernel: np.ndarray | None = None  # [D (+R), H0]
    deep_item_kernel: np.ndarray | None = None  # [D (+R) (+F), H0]: rows for q, q'_copy, item features
    deep_bias: np.ndarray | None = None  # [H0], with the time feature's row x time_now folded in
    deep_layers: list[DeepLayer] = field(default_factory=list)

    @property
    def has_deep(self) -> bool:
        return self.deep_weight != 0 and self.deep_user_kernel is not None

    def user_deep_inputs(self, user_mf: np.ndarray, user_implicit: np.ndarray | None) -> np.ndarray:
        """The user-side inputs of the deep branch ([p] or [p, p'_copy])."""
        if self.user_implicit is None or user_implicit is None:
            return user_mf
        return np.concatenate([user_mf, user_implicit], axis=-1)

    def item_deep_part(self) -> np.ndarray:
        """[N, H0]: the item side of the first deep layer, plus its bias (precomputed once per model)."""
        parts = [a for a in (self.item_mf, self.item_implicit, self.item_features) if a is not None]
        item_in = np.concatenate(parts, axis=1)
        return (item_in @ self.deep_item_kernel + self.deep_bias).astype(np.float32)


def fold_batchnorm(kernel, bias, gamma, beta, mean, var, eps) -> tuple[np.ndarray, np.ndarray]:
    """A Dense followed by inference-mode BatchNorm, as one Dense."""
    scale = gamma / np.sqrt(var + eps)
    return kernel * scale[None, :], (bias - mean) * scale + beta


def deep_forward(w: ServingWeights, h_user: np.ndarray, h_item: np.ndarray) -> np.ndarray:
    """f(u, i) from the first layer's user part [..., H0] and item part [..., H0] (broadcasting)."""
    h = np.maximum(h_user + h_item, 0.0)
    for layer in w.deep_layers:
        h = h @ layer.kernel + layer.bias
        if layer.relu:
            h = np.maximum(h, 0.0)
    return h[..., 0]


def stage_one(w: ServingWeights, user_rank: np.ndarray, user_mf: np.ndarray) -> np.ndarray:
    """[B, N] logit + gamma * (b_i + w_mf * p.q) for users given by their factors."""
    s = user_rank @ w.item_rank.T + w.item_rank_bias
    if w.gamma:
        s = s + w.gamma * (w.item_bias + w.mf_weight * (user_mf @ w.item_mf.T))
    return s


def two_stage_scores(
    w: ServingWeights,
    users: np.ndarray,
    exclude: np.ndarray | None = None,
    candidates: int = CANDIDATES,
    item_part: np.ndarray | None = None,
) -> np.ndarray:
    """[B, N] served scores for known user indices: final scores on the candidates, -inf elsewhere.

    ``exclude`` is a boolean [B, N] of movies that must not be recommended (seen, filtered).
    """
    s1 = stage_one(w, w.user_rank[users], w.user_mf[users])
    if exclude is not None:
        s1 = np.where(exclude, -np.inf, s1)
    if not w.gamma:
        return s1
    c = min(candidates, s1.shape[1])
    cand = np.argpartition(-s1, c - 1, axis=1)[:, :c]
    final = np.take_along_axis(s1, cand, axis=1) + w.gamma * (w.mu + w.user_bias[users][:, None])
    if w.has_deep:
        part = w.item_deep_part() if item_part is None else item_part
        u_in = w.user_deep_inputs(w.user_mf[users], None if w.user_implicit is None else w.user_implicit[users])
        h_user = (u_in @ w.deep_user_kernel)[:, None, :]
        final = final + w.gamma * w.deep_weight * deep_forward(w, h_user, part[cand])
    out = np.full_like(s1, -np.inf)
    np.put_along_axis(out, cand, final, axis=1)
    return out


def full_ratings(w: ServingWeights, users: np.ndarray, item_part: np.ndarray | None = None) -> np.ndarray:
    """[B, N] the full predicted rating of every movie (exact; used to measure the two-stage overlap)."""
    r = w.mu + w.user_bias[users][:, None] + w.item_bias + w.mf_weight * (w.user_mf[users] @ w.item_mf.T)
    if w.has_deep:
        part = w.item_deep_part() if item_part is None else item_part
        u_in = w.user_deep_inputs(w.user_mf[users], None if w.user_implicit is None else w.user_implicit[users])
        h_user = (u_in @ w.deep_user_kernel)[:, None, :]
        r = r + w.deep_weight * deep_forward(w, h_user, part[None, :, :])
    return r


def from_keras(model, kind: str, global_mean: float, gamma: float, time_now: float | None = None) -> ServingWeights:
    """Read :class:`ServingWeights` out of a trained pairwise Keras model from :mod:`training.models`.

    A model with the time input is served at ``time_now``: its kernel row times ``time_now`` joins the first
    layer's bias, so the served graphs need no time input.
    """
    names = {layer.name for layer in model.layers}
    get = lambda name: [np.asarray(a, np.float32) for a in model.get_layer(name).get_weights()]  # noqa: E731
    p, q = get("user_embedding")[0], get("item_embedding")[0]
    d = p.shape[1]
    if "rank_items" in names:
        user_rank = get("rank_user_embedding")[0]
        item_rank, item_rank_bias = get("rank_items")
    else:  # MSE-only model: rank by the rating alone
        user_rank = np.zeros((p.shape[0], 1), np.float32)
        item_rank, item_rank_bias = np.zeros((q.shape[0], 1), np.float32), np.zeros(q.shape[0], np.float32)
        gamma = gamma or 1.0
    mf_weight, deep_weight = {"residual": (1.0, 1.0), "mf": (1.0, 0.0), "ncf": (0.0, 1.0)}.get(kind, (None, None))
    if kind == "hybrid":
        alpha = float(1.0 / (1.0 + np.exp(-float(np.asarray(model.get_layer("blend").get_weights()[0])))))
        mf_weight, deep_weight = alpha, 1.0 - alpha
    w = ServingWeights(
        gamma=float(gamma),
        mu=float(global_mean),
        mf_weight=mf_weight,
        deep_weight=deep_weight,
        user_rank=user_rank,
        item_rank=item_rank,
        item_rank_bias=item_rank_bias,
        user_mf=p,
        user_bias=get("user_bias")[0][:, 0],
        item_mf=q,
        item_bias=get("item_bias")[0][:, 0],
    )
    if "deep_dense_0" not in names:
        return w
    if "implicit_user" in names:
        w.user_implicit, w.item_implicit = get("implicit_user")[0], get("implicit_item")[0]
    if "item_features" in names:
        w.item_features = get("item_features")[0]
    kernel0, w.deep_bias = get("deep_dense_0")
    if "time" in {t.name for t in model.inputs}:  # the last input row of the first layer
        if time_now is None:
            raise ValueError("a model with the time feature needs time_now to be served")
        w.deep_bias = (w.deep_bias + float(time_now) * kernel0[-1]).astype(np.float32)
        kernel0 = kernel0[:-1]
    r = 0 if w.user_implicit is None else w.user_implicit.shape[1]
    # Concatenate order in the model: [p, q], then [p'_copy, q'_copy] if any, then the item features if any;
    # everything after the user's part is item-side.
    w.deep_user_kernel = np.concatenate([kernel0[:d], kernel0[2 * d : 2 * d + r]])
    w.deep_item_kernel = np.concatenate([kernel0[d : 2 * d], kernel0[2 * d + r :]])
    depth = 1
    while f"deep_dense_{depth}" in names:
        kernel, bias = get(f"deep_dense_{depth}")
        if f"deep_bn_{depth}" in names:
            bn = model.get_layer(f"deep_bn_{depth}")
            g, b, mean, var = get(f"deep_bn_{depth}")
            kernel, bias = fold_batchnorm(kernel, bias, g, b, mean, var, bn.epsilon)
        w.deep_layers.append(DeepLayer(kernel.astype(np.float32), bias.astype(np.float32), relu=True))
        depth += 1
    kernel, bias = get("deep_out")
    w.deep_layers.append(DeepLayer(kernel, bias, relu=False))
    return w
