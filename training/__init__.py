"""Training pipeline: MovieLens loading, splits, the residual MF model family, evaluation."""
