"""One user's autoencoder step 1, compiled with Numba: the API's forward pass.

Twenty-odd NumPy calls on arrays of 29 numbers cost tens of microseconds, almost all of it
in NumPy's call machinery, and more when a busy server has pushed that code out of the CPU
caches; one compiled loop does the same arithmetic in a microsecond. Each layer sums in
float64 and rounds to float32 once, as :meth:`DenseNet.__call__ <core.families.dense_numpy.
DenseNet.__call__>` does for batches, so one user and a batch get the same numbers.

Only this module and ``core.serving.ranking_kernel`` import Numba, lazily (the first call of a
process loads the compiled code from the cache beside this file).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from core.families.dense_numpy import ACTIVATION_CODES

RELU, SIGMOID, TANH, ELU = (ACTIVATION_CODES[a] for a in ("relu", "sigmoid", "tanh", "elu"))


@njit(cache=True, nogil=True)
def predict_one(
    ratings: np.ndarray,
    scale: np.ndarray,
    minimum: np.ndarray,
    weights: np.ndarray,
    biases: np.ndarray,
    sizes: np.ndarray,
    activations: np.ndarray,
) -> np.ndarray:
    """Planwise step 1 for one user: scale, forward pass, clip to [0, 1], inverse-scale.

    ``weights`` holds each layer's kernel (inputs × units, row-major) one after another,
    ``biases`` their biases, ``sizes`` the width of the input and of every layer.
    """
    width = 0
    for n in sizes:
        width = max(width, n)
    h = np.empty(width, dtype=np.float64)  # float32 values, held in float64
    z = np.empty(width, dtype=np.float64)
    for i in range(sizes[0]):
        h[i] = np.float32(ratings[i] * scale[i] + minimum[i])
    w_at, b_at = 0, 0
    for layer in range(len(sizes) - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        for j in range(n_out):
            z[j] = 0.0
        for i in range(n_in):
            x = h[i]
            row = w_at + i * n_out
            for j in range(n_out):
                z[j] += x * weights[row + j]
        kind = activations[layer]
        for j in range(n_out):
            v = z[j] + biases[b_at + j]
            if kind == RELU:
                v = max(v, 0.0)
            elif kind == SIGMOID:
                v = 1.0 / (1.0 + math.exp(-v))
            elif kind == TANH:
                v = math.tanh(v)
            elif kind == ELU:
                v = v if v > 0.0 else math.expm1(v)
            h[j] = np.float32(v)
        w_at += n_in * n_out
        b_at += n_out
    n = sizes[len(sizes) - 1]
    out = np.empty(n, dtype=np.float64)
    for j in range(n):
        v = min(max(h[j], 0.0), 1.0)
        # As scikit-learn's inverse_transform on float32: each step rounded to float32.
        v = np.float32(v - minimum[j])
        out[j] = np.float64(np.float32(v / scale[j]))
    return out
