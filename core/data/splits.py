"""Seeded train/validation/test splits of a users matrix.

Two kinds of holding out, because a recommender is judged on both: whole users the model never
saw (test users), and, within each test user, ratings hidden from the model that it must
predict (held-out ratings). Users with a single rating cannot lend one, so they train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import BadInput


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row indices
    valid: np.ndarray
    test: np.ndarray
    visible: np.ndarray  # test rows × 29: ratings the model is shown
    hidden: np.ndarray  # test rows × 29: ratings it must predict

    def describe(self) -> dict[str, int]:
        return {
            "train_users": len(self.train),
            "valid_users": len(self.valid),
            "test_users": len(self.test),
            "held_out_ratings": int(self.hidden.sum()),
        }


def split_users(
    ratings: np.ndarray,
    *,
    seed: int,
    test_share: float = 0.2,
    valid_share: float = 0.1,
    holdout_share: float = 0.3,
    test_rows: np.ndarray | None = None,
) -> Split:
    """Split rows; ``test_rows`` fixes the test users (for k-fold cross-validation)."""
    for name, share in (("test_share", test_share), ("valid_share", valid_share)):
        if not 0.0 <= share < 0.9:
            raise BadInput(f"{name} must be in [0, 0.9), got {share}")
    if not 0.0 < holdout_share < 1.0:
        raise BadInput(f"holdout_share must be in (0, 1), got {holdout_share}")
    known = ratings > 0
    n = len(ratings)
    if n < 10:
        raise BadInput(f"a dataset needs at least 10 users to train and evaluate, got {n}")
    rng = np.random.default_rng(seed)
    lendable = np.flatnonzero(known.sum(axis=1) >= 2)
    if test_rows is None:
        n_test = int(round(test_share * n))
        test = np.sort(rng.choice(lendable, size=min(n_test, len(lendable)), replace=False))
    else:
        test = np.sort(np.intersect1d(test_rows, lendable))
    rest = rng.permutation(np.setdiff1d(np.arange(n), test))
    n_valid = int(round(valid_share * n))
    valid, train = np.sort(rest[:n_valid]), np.sort(rest[n_valid:])
    if len(train) == 0:
        raise BadInput("the split leaves no training users")
    tk = known[test]
    keys = rng.random(tk.shape)
    keys[~tk] = np.inf
    order = np.argsort(keys, axis=1)
    counts = tk.sum(axis=1)
    n_hide = np.clip(np.rint(holdout_share * counts).astype(int), 1, np.maximum(counts - 1, 1))
    rank = np.argsort(order, axis=1)
    hidden = tk & (rank < n_hide[:, None])
    return Split(train, valid, test, tk & ~hidden, hidden)


def folds_of(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """``folds`` disjoint sets of test rows covering all users."""
    if not 2 <= folds <= 20:
        raise BadInput(f"folds must be from 2 to 20, got {folds}")
    return [np.sort(f) for f in np.array_split(np.random.default_rng(seed).permutation(n), folds)]
