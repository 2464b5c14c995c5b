"""Serving a Keras dense autoencoder with NumPy: weights read with h5py, no TensorFlow.

Importing TensorFlow costs seconds and ``model.predict`` ~40 ms per call; the Planwise
autoencoders are a few dense layers, whose forward pass in NumPy takes microseconds and gives
Keras' numbers to float32 precision: each layer sums in float64 and rounds to float32 once,
so a batch (NumPy here) and one user (``dense_kernel``) agree whatever the BLAS kernel's
summation order. Both the legacy ``.h5``
format (Keras 2) and Keras 3's ``.keras`` zip are read. Anything that is not a plain stack of
Dense layers (with Dropout/noise layers, inactive at inference) is refused, because the NumPy
pass would silently compute something else.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core.data.categories import N_CATEGORIES
from core.errors import BadInput

INERT_LAYERS = {
    "InputLayer",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "ActivityRegularization",
}
# On float64 sums; the caller rounds the result to float32.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
}
ACTIVATION_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "elu": 4}  # dense_kernel


@dataclass(frozen=True)
class DenseLayer:
    name: str
    kernel: np.ndarray  # float32, inputs × units
    bias: np.ndarray
    activation: str


@dataclass(frozen=True)
class DenseNet:
    """A stack of dense layers; ``__call__`` is the NumPy forward pass."""

    layers: tuple[DenseLayer, ...]
    keras_version: str | None = None
    backend: str | None = None

    @property
    def input_size(self) -> int:
        return int(self.layers[0].kernel.shape[0])

    @property
    def output_size(self) -> int:
        return int(self.layers[-1].kernel.shape[1])

    @property
    def hidden_layers(self) -> list[int]:
        return [int(layer.kernel.shape[1]) for layer in self.layers[:-1]]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(x, dtype=np.float32)
        for kernel, bias, activation in self._float64_layers:
            out = ACTIVATIONS[activation](out.astype(np.float64) @ kernel + bias).astype(np.float32)
        return out

    @functools.cached_property
    def _float64_layers(self) -> tuple[tuple[np.ndarray, np.ndarray, str], ...]:
        return tuple(
            (layer.kernel.astype(np.float64), layer.bias.astype(np.float64), layer.activation)
            for layer in self.layers
        )

    @functools.cached_property
    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kernels, biases, sizes, activation codes) as flat arrays for ``dense_kernel``."""
        weights = np.concatenate([k.ravel() for k, _, _ in self._float64_layers])
        biases = np.concatenate([b for _, b, _ in self._float64_layers])
        sizes = np.array([self.input_size, *(len(b) for _, b, _ in self._float64_layers)])
        codes = np.array([ACTIVATION_CODES[a] for _, _, a in self._float64_layers])
        return weights, biases, sizes.astype(np.int64), codes.astype(np.int64)

    def check_autoencoder(self, subject: str) -> None:
        if self.input_size != N_CATEGORIES or self.output_size != N_CATEGORIES:
            raise BadInput(
                f"{subject} maps {self.input_size} inputs to {self.output_size} outputs; "
                f"an autoencoder over the {N_CATEGORIES} categories must map 29 to 29"
            )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _layer_specs(
    config: Mapping[str, Any], subject: str, *, keras3_paths: bool = False
) -> list[tuple[str, str]]:
    """(weights path, activation) of each Dense layer, in order; refuses other layer kinds.

    Keras 2 stores weights under the layer's name; Keras 3 under a generic path per class in
    layer order (``dense``, ``dense_1``, ...), whatever the layer was called.
    """
    seen: dict[str, int] = {}
    inner = config.get("config", {})
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        raise BadInput(f"{subject} holds no layer list; expected a Sequential/Functional model")
    specs = []
    for layer in layers:
        kind = layer.get("class_name")
        cfg = layer.get("config", {})
        if kind != "InputLayer":
            count = seen.get(kind, 0)
            seen[kind] = count + 1
            generic = _snake(str(kind)) + (f"_{count}" if count else "")
        if kind == "Dense":
            activation = cfg.get("activation", "linear")
            if isinstance(activation, dict):  # serialised activation object
                activation = activation.get("config", {}).get("name", activation.get("class_name"))
            if activation not in ACTIVATIONS:
                raise BadInput(f"{subject}: layer {cfg.get('name')} uses activation {activation!r}")
            name = generic if keras3_paths else str(cfg.get("name", layer.get("name")))
            specs.append((name, str(activation)))
        elif kind not in INERT_LAYERS:
            raise BadInput(f"{subject} has a {kind} layer; only dense autoencoders are supported")
    if not specs:
        raise BadInput(f"{subject} has no Dense layers")
    return specs


def _find_vars(group: h5py.Group, name: str) -> list[np.ndarray]:
    """The variables of layer ``name``: Keras 2 ``kernel:0``/``bias:0`` or Keras 3 ``vars/0..``."""
    found: list[tuple[str, np.ndarray]] = []

    def visit(path: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append((path, np.asarray(obj, dtype=np.float32)))

    group.visititems(visit)
    by_name = {p.rsplit("/", 1)[-1]: v for p, v in found}
    if "kernel:0" in by_name:
        return [by_name["kernel:0"], by_name.get("bias:0", np.zeros(by_name["kernel:0"].shape[1]))]
    ordered = sorted(found, key=lambda pv: int(pv[0].rsplit("/", 1)[-1]))
    return [v for _, v in ordered]


def _build(
    specs: list[tuple[str, str]], weights_root: h5py.Group, subject: str
) -> list[DenseLayer]:
    layers: list[DenseLayer] = []
    for name, activation in specs:
        group = weights_root.get(name)
        if group is None:
            raise BadInput(f"{subject} has no weights for layer {name}")
        arrays = _find_vars(group, name)
        if len(arrays) < 1 or arrays[0].ndim != 2:
            raise BadInput(f"{subject}: weights of layer {name} are not a dense kernel")
        kernel = np.ascontiguousarray(arrays[0], dtype=np.float32)
        bias = arrays[1] if len(arrays) > 1 else np.zeros(kernel.shape[1], np.float32)
        if bias.shape != (kernel.shape[1],):
            raise BadInput(f"{subject}: bias of layer {name} does not match its kernel")
        if layers and layers[-1].kernel.shape[1] != kernel.shape[0]:
            raise BadInput(f"{subject}: layer {name} does not follow the previous layer's size")
        layers.append(DenseLayer(name, kernel, bias.astype(np.float32), activation))
    return layers


def read_h5(path: Path) -> DenseNet:
    """A legacy Keras ``.h5`` full-model file."""
    subject = f"{path.name}"
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise BadInput(f"{subject} is an HDF5 file without a Keras model configuration")
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            weights = f.get("model_weights", f)
            layers = _build(_layer_specs(config, subject), weights, subject)
            version = f.attrs.get("keras_version")
            backend = f.attrs.get("backend")
    except OSError as exc:
        raise BadInput(f"{subject} is not a readable HDF5/Keras file: {exc}") from exc

    def text(v: object) -> str | None:
        return None if v is None else v.decode() if isinstance(v, bytes) else str(v)

    return DenseNet(tuple(layers), text(version), text(backend))


def read_keras(path: Path) -> DenseNet:
    """A Keras 3 ``.keras`` archive (config.json + model.weights.h5 in a zip)."""
    subject = path.name
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in z.namelist() else {}
            weights = io.BytesIO(z.read("model.weights.h5"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise BadInput(f"{subject} is not a Keras 3 archive: {exc}") from exc
    specs = _layer_specs(config, subject, keras3_paths=True)
    with h5py.File(weights, "r") as f:
        root = f.get("layers", f)
        layers = _build(specs, root, subject)
    return DenseNet(tuple(layers), meta.get("keras_version"), "tensorflow")


def read(path: Path) -> DenseNet:
    return read_keras(path) if path.suffix == ".keras" else read_h5(path)


@dataclass(frozen=True)
class MinMax:
    """A fitted MinMaxScaler as two arrays (what ``transform`` and its inverse use)."""

    scale: np.ndarray
    min: np.ndarray

    @classmethod
    def from_sklearn(cls, scaler: Any, subject: str = "scaler") -> MinMax:
        scale = getattr(scaler, "scale_", None)
        minimum = getattr(scaler, "min_", None)
        if scale is None or minimum is None:
            raise BadInput(f"{subject} is a {type(scaler).__name__}, not a fitted MinMaxScaler")
        scale = np.asarray(scale, dtype=np.float64)
        minimum = np.asarray(minimum, dtype=np.float64)
        if scale.shape != (N_CATEGORIES,) or minimum.shape != (N_CATEGORIES,):
            raise BadInput(f"{subject} was fitted on {scale.shape[0]} columns, not {N_CATEGORIES}")
        if not (np.isfinite(scale).all() and np.isfinite(minimum).all()) or (scale == 0).any():
            raise BadInput(f"{subject} holds non-finite or zero scales")
        return cls(scale, minimum)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale + self.min

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return (x - self.min) / self.scale
