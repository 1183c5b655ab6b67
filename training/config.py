"""The training configuration: one typed model per area, the single source of every hyperparameter's name, type,
default, range and help.

:class:`ModelConfig` (architecture) and :class:`TrainConfig` (optimisation, with the model config inside) are
pydantic models. From their fields come the ``training.train`` flags (:func:`training.cli.add_train_args`), and
through those flags the ``--config`` JSON file's keys and types, and the tuner's search space
(``tune=`` on a field, read by :func:`search_space`). A new hyperparameter is one field here.

Fields marked ``cli=False`` are set by training itself (the global mean, the time at serving, the resolved
feature switch) and recorded with the model; they are not options.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_KINDS = ("residual", "hybrid", "mf", "ncf")
LR_SCHEDULES = ("exponential", "cosine", "plateau", "constant")
SOFTMAX_KINDS = ("per-user", "per-rating")


def option(default: Any, help: str, *, flag: str | None = None, tune: dict | None = None, cli: bool = True, **kw):
    """A field that is also a command-line option (``flag`` overrides ``--field-name``) and, with ``tune``, a
    dimension of the tuner's search space: ``{"kind": "float"|"log"|"int"|"choice", "low", "high", "choices",
    "grid"}`` (``grid``: the grid sampler's values)."""
    extra: dict[str, Any] = {"cli": cli}
    if flag:
        extra["flag"] = flag
    if tune:
        extra["tune"] = tune
    return Field(default, description=help, json_schema_extra=extra, **kw)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_dict(self) -> dict:
        return self.model_dump()


class ModelConfig(_Config):
    """Architecture hyperparameters; saved verbatim in the model metadata."""

    kind: Literal["residual", "hybrid", "mf", "ncf"] = option("residual", "model variant", flag="--variant")
    dim: int = option(
        32, "embedding size", ge=1, tune={"kind": "choice", "choices": (16, 32, 64, 128), "grid": (32, 64)}
    )
    hidden: tuple[int, ...] = option(
        (400, 100),
        "deep branch widths",
        tune={"kind": "choice", "choices": ("200", "400,100", "800,200", "400,200,100"), "grid": ("400,100",)},
    )
    dropout: float = option(
        0.3,
        "dropout after the deep branch's first layer",
        ge=0,
        lt=1,
        tune={"kind": "float", "low": 0.0, "high": 0.5, "grid": (0.3,)},
    )
    l2: float = option(
        3e-3,
        "L2 on the user/movie embedding tables, applied to the whole table every step (scaled down past "
        "--reg-reference)",
        ge=0,
        tune={"kind": "log", "low": 1e-4, "high": 3e-2, "grid": (1e-3, 3e-3)},
    )
    bias_l2: float = option(1e-5, "L2 on the user/movie bias tables (scaled down past --reg-reference)", ge=0)
    dense_l2: float = option(
        0.0,
        "L2 on the deep branch's kernels (scaled down past --reg-reference)",
        ge=0,
        tune={"kind": "log", "low": 1e-7, "high": 1e-3, "grid": (1e-7,)},
    )
    l1: float = option(
        0.0,
        "L1 on the user/movie embedding tables (sparser factors), besides l2 (scaled down past --reg-reference)",
        ge=0,
        tune={"kind": "log", "low": 1e-8, "high": 1e-4, "grid": (1e-8,)},
    )
    dense_l1: float = option(
        0.0, "L1 on the deep branch's kernels, besides dense_l2 (scaled down past --reg-reference)", ge=0
    )
    batchnorm: bool = option(
        True,
        "batch normalisation in the deep branch",
        tune={"kind": "choice", "choices": (True, False), "grid": (True,)},
    )
    alpha: float | None = option(None, "hybrid: fixed MF weight (default: learned)", ge=0, le=1)
    rank_dim: int = option(
        128,
        "interaction head size (0: MSE only)",
        ge=0,
        tune={"kind": "choice", "choices": (64, 128, 256), "grid": (128,)},
    )
    # 7e-5 rather than 1e-5: the lighter penalty peaked after a few epochs and then overfitted (validation NDCG@10
    # fell while the softmax loss kept dropping); 5e-5 before the trainer's user balancing (docs/results.md,
    # "Ablation").
    rank_l2: float = option(
        7e-5,
        "L2 on the interaction head's tables (scaled down past --reg-reference)",
        ge=0,
        tune={"kind": "log", "low": 3e-6, "high": 3e-4, "grid": (7e-5,)},
    )
    implicit_inputs: bool = option(True, "feed the interaction head's factors to the deep branch")
    item_features: bool | None = option(
        None,
        "feed each movie's genres and release year to the deep branch (default: when the movie metadata has them)",
        tune={"kind": "choice", "choices": (True, False), "grid": (True, False)},
    )
    time_feature: bool = option(
        False,
        "feed the rating's time to the deep branch (serving: the last training rating's time)",
        tune={"kind": "choice", "choices": (True, False), "grid": (False,)},
    )
    time_now: float | None = option(None, "the last training rating's scaled time, set by training", cli=False)
    # Every regulariser above is multiplied by this when the model is built: min(1, reg_reference / training
    # ratings), set by training (TrainConfig.reg_reference). Saved with the model beside the strengths as given.
    reg_scale: float = option(1.0, "factor on every regularisation strength, set by training", cli=False, gt=0)
    global_mean: float = option(3.5, "the training ratings' mean, set by training", cli=False)
    extra: dict = option({}, "free-form notes recorded with the model", cli=False)


class TrainConfig(_Config):
    """Optimisation hyperparameters and the architecture; saved verbatim in the model metadata."""

    epochs: int = option(40, "most epochs (early stopping usually ends sooner)", ge=1)
    batch_size: int = option(1024, "ratings per step (grown on larger data, see max_steps)", ge=1)
    max_steps: int = option(
        2000,
        "most steps per epoch: past max_steps x batch_size training ratings the batch grows (0: never); every step "
        "updates the embedding tables whole, so steps x (users + movies) is a cost of its own at scale",
        ge=0,
    )
    lr: float = option(
        3e-3, "Adam's learning rate", gt=0, tune={"kind": "log", "low": 5e-4, "high": 1e-2, "grid": (1e-3, 3e-3)}
    )
    lr_schedule: Literal["exponential", "cosine", "plateau", "constant"] = option(
        "exponential",
        "learning-rate schedule",
        tune={"kind": "choice", "choices": ("exponential", "cosine", "plateau"), "grid": ("exponential",)},
    )
    lr_decay: float = option(0.97, "per-epoch factor of the exponential schedule", gt=0)
    rank_weight: float = option(1.0, "weight of the interaction head's loss", ge=0)
    liked_weight: float = option(
        3.0,
        "softmax weight of ratings >= liked_threshold vs the others",
        gt=0,
        tune={"kind": "float", "low": 1.0, "high": 5.0, "grid": (3.0,)},
    )
    liked_threshold: float = option(4.0, "rating from which a rating counts as liked", cli=False)
    # Softmax weight of each of a user's ratings scaled by n_u ** -user_balance (n_u: the user's training ratings),
    # so a few very active users do not dominate the ranking loss (0: every rating counts the same; 1: every user).
    user_balance: float = option(
        0.35,
        "softmax weight of a user's ratings scaled by (their number of ratings) ** -this (0: none)",
        ge=0,
        le=1,
        tune={"kind": "float", "low": 0.0, "high": 1.0, "grid": (0.35,)},
    )
    rank_blend: float | None = option(
        None, "MF rating weight in the ranking score (default: chosen on validation)", ge=0
    )
    # How the interaction head's catalogue softmax is computed (training.batches): "per-user" once per softmax row
    # of a user's ratings in a step, "per-rating" once per rating (the original formulation; same loss).
    softmax: Literal["per-user", "per-rating"] = option(
        "per-user", "interaction head's catalogue softmax once per user row (default) or once per rating (slower)"
    )
    softmax_chunk: int | None = option(
        None, "per-user softmax: a user's ratings per catalogue row, at most (0: all; default: batch size / 128)", ge=0
    )
    # Past SAMPLE_FROM movies (training.batches) the per-user softmax's normaliser is estimated from a shared draw of
    # movies per step instead of summed over the whole catalogue: the catalogue row is most of an epoch at scale
    # (66% at the 10M shape, docs/results.md "Time to learn"), and the draw costs softmax_sample / movies of it.
    softmax_sample: int | None = option(
        None,
        "per-user softmax: movies drawn per step to estimate each row's normaliser (0: the whole catalogue; "
        "default: 8,192 past 16,384 movies, else 0)",
        ge=0,
    )
    rank_user_lr_scale: float | None = option(
        None,
        "per-user softmax: users' interaction-factor learning rate relative to the rest (default: from the data)",
        gt=0,
    )
    # The penalties are added to the mean loss of a step, so against the whole data's mean loss; each user's and
    # movie's ratings are a share of that mean that shrinks as 1/n as the data grows, while their penalty does not.
    # The strengths were tuned on u1 and ml-latest-small (76,000 to 96,000 training ratings); past reg_reference
    # they are scaled by reg_reference / n, which keeps each row's prior at the same weight against its own ratings
    # (maximum a posteriori with a fixed prior). Held at 1 on 900,000 ratings, validation NDCG@10 had not levelled
    # off after 40 epochs and stayed below ALS's (docs/results.md, "Time to learn").
    reg_reference: int = option(
        100_000,
        "training ratings up to which the regularisation strengths apply as given; past it they are scaled by "
        "reg_reference / ratings (0: never scaled)",
        ge=0,
    )
    val_fraction: float = option(0.05, "seeded part of the training ratings held out for early stopping", ge=0, lt=0.5)
    patience: int = option(6, "epochs without improvement of either head before stopping", ge=0)
    seed: int = option(42, "seed of the initialisation, the batches and the validation part")
    model: ModelConfig = Field(default_factory=ModelConfig)


def cli_fields(config: type[_Config]) -> dict[str, Any]:
    """The fields of ``config`` that are command-line options, in declaration order."""
    return {n: f for n, f in config.model_fields.items() if (f.json_schema_extra or {}).get("cli", False)}


def search_space() -> list[tuple[str, dict]]:
    """(option name, tune metadata) of every searched hyperparameter, architecture first."""
    out = []
    for config in (ModelConfig, TrainConfig):
        for name, f in cli_fields(config).items():
            tune = (f.json_schema_extra or {}).get("tune")
            if tune:
                out.append((name, dict(tune)))
    return out
