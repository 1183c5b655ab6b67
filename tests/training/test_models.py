"""Model shapes, the live deep branch (the bug in the design's source snippet), hybrid alpha."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from training.models import MODEL_KINDS, ModelConfig, build_model, training_model  # noqa: E402

N_USERS, N_ITEMS = 12, 9
X = {"user": np.array([0, 3, 7, 11], np.int32), "item": np.array([1, 8, 4, 0], np.int32)}


def small(kind: str = "residual", **kw) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model(N_USERS, N_ITEMS, ModelConfig(kind=kind, dim=4, hidden=(16, 8), rank_dim=3, **kw))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_variant_has_pairwise_and_catalogue_outputs(kind):
    model = small(kind)
    out = model.predict(X, verbose=0)
    assert out["rating"].shape == (4, 1) and out["interaction"].shape == (4, 1)
    full = training_model(model).predict(X, verbose=0)
    assert full["interaction"].shape == (4, N_ITEMS)
    # the pairwise logit is the catalogue logit at that item
    np.testing.assert_allclose(full["interaction"][np.arange(4), X["item"]], out["interaction"][:, 0], rtol=1e-5)


def test_rank_dim_zero_drops_the_interaction_head():
    model = small(rank_dim=0) if False else build_model(N_USERS, N_ITEMS, ModelConfig(dim=4, hidden=(8, 4), rank_dim=0))
    assert set(model.output) == {"rating"}


def test_deep_branch_receives_gradient_and_changes_predictions():
    # The source snippet fed BatchNorm and the last Dense from the MF output, leaving the deep
    # branch dead. Here every deep layer must get gradient from the rating loss...
    # The output layer starts at zero (the model starts as MF), so take one step first.
    model = small("residual")
    deep = [w for w in model.trainable_weights if w.path.startswith("deep_")]
    assert {w.path.split("/")[0] for w in deep} >= {"deep_dense_0", "deep_dense_1", "deep_bn_1", "deep_out"}
    opt = keras.optimizers.Adam(1e-2)

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(X, training=True)["rating"] - np.array([[1.0], [5], [2], [4]])))
        grads = tape.gradient(loss, deep)
        opt.apply_gradients(zip(grads, deep, strict=True))
        return grads

    step()
    grads = step()
    assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)
    # ...and silencing the branch must change the predictions.
    before = model.predict(X, verbose=0)["rating"]
    out = model.get_layer("deep_out")
    out.set_weights([np.zeros_like(w) for w in out.get_weights()])
    after = model.predict(X, verbose=0)["rating"]
    assert np.abs(before - after).max() > 1e-4
    # the BatchNorm reads the deep branch, not the MF term
    assert model.get_layer("deep_bn_1").input.shape[-1] == 8


def test_mf_has_no_deep_branch_and_ncf_no_dot_product():
    assert not any(lyr.name.startswith("deep_") for lyr in small("mf").layers)
    ncf = small("ncf")
    assert any(lyr.name == "deep_out" for lyr in ncf.layers)
    assert "mf" not in {n.operation.name for n in ncf.get_layer("rating_sum")._inbound_nodes[0].parent_nodes}


def test_hybrid_alpha_is_learned_or_fixed():
    learned = small("hybrid").get_layer("blend")
    assert learned.trainable_weights and abs(float(tf.sigmoid(learned.w)) - 0.5) < 1e-6
    fixed = small("hybrid", alpha=0.8).get_layer("blend")
    assert not fixed.trainable_weights and abs(float(tf.sigmoid(fixed.w)) - 0.8) < 1e-5


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        ModelConfig(kind="svd")
