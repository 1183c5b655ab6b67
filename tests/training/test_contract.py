"""One contract, every model: ours, the baselines and the peers honour training.interface.RecommenderModel."""

from __future__ import annotations

import numpy as np
import pytest

from bench.peers import EASE, ImplicitPeer, SurprisePeer
from training.baselines import BiasBaseline, GlobalMean, Popularity
from training.interactions import IdMap, to_interactions
from training.interface import RecommenderModel
from training.synthetic import low_rank_ratings


def _ours():
    pytest.importorskip("keras")
    from training.config import ModelConfig, TrainConfig
    from training.residual import ResidualModel

    cfg = TrainConfig(epochs=2, batch_size=128, model=ModelConfig(dim=4, hidden=(8,), rank_dim=4, item_features=False))
    return ResidualModel(cfg)


def _needs(module: str):
    def make(factory):
        def build():
            pytest.importorskip(module)
            return factory()

        return build

    return make


MODELS = {
    "residual": _ours,
    "global mean": GlobalMean,
    "bias": BiasBaseline,
    "popularity": Popularity,
    "EASE": lambda: EASE(lam=10.0),
    "implicit ALS": _needs("implicit")(lambda: ImplicitPeer("als", factors=4, iterations=3, num_threads=1)),
    "implicit BPR": _needs("implicit")(lambda: ImplicitPeer("bpr", factors=4, iterations=3, num_threads=1)),
    "Surprise SVD": _needs("surprise")(lambda: SurprisePeer("svd", n_factors=4, n_epochs=3)),
    "Surprise SVD++": _needs("surprise")(lambda: SurprisePeer("svdpp", n_factors=4, n_epochs=3)),
}


@pytest.fixture(scope="module")
def train():
    data = low_rank_ratings(n_users=40, n_items=25, density=0.3, seed=1)
    return to_interactions(data, IdMap(np.unique(data["user_id"])), IdMap(np.unique(data["movie_id"])))


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_honours_the_interface(name, train, tmp_path):
    model = MODELS[name]()
    assert isinstance(model, RecommenderModel) and isinstance(model.name, str) and model.name
    assert model.rates or model.ranks
    assert model.fit(train) is model
    users = np.arange(5)
    pairs_u, pairs_i = np.array([0, 1, 2, -1, 3]), np.array([0, 1, 2, 3, -1])
    if model.rates:
        pred = model.predict(pairs_u, pairs_i)
        assert pred.shape == (5,) and np.isfinite(pred).all()
    else:
        with pytest.raises(NotImplementedError):
            model.predict(pairs_u, pairs_i)
    if model.ranks:
        scores = model.score(users)
        assert scores.shape == (5, train.n_items) and not np.isnan(scores).any()
    else:
        with pytest.raises(NotImplementedError):
            model.score(users)
    path = tmp_path / "model"
    model.save(path)
    again = type(model).load(path)
    assert again.name == model.name and (again.rates, again.ranks) == (model.rates, model.ranks)
    if model.rates:
        np.testing.assert_allclose(again.predict(pairs_u, pairs_i), model.predict(pairs_u, pairs_i), rtol=1e-6)
    if model.ranks:
        np.testing.assert_allclose(again.score(users), model.score(users), rtol=1e-6)
