"""The Planwise denoising autoencoder, trained with Keras and served with NumPy.

Training hides a share of each user's known ratings (``noise_rate``) and asks the network to
reconstruct all known ones; the loss counts known ratings only, so "not rated" is never taught
as "rated 0". Inputs are scaled with a MinMaxScaler saved beside the model as ``scaler.save``,
exactly as the original project did, so legacy and new versions load the same way.
TensorFlow is imported only inside ``fit``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np

from core.data.categories import N_CATEGORIES
from core.errors import ArtifactIntegrityError, BadInput
from core.families import dense_numpy
from core.families.base import Family, FitData, Progress, no_progress

MODEL_FILE = "model.keras"
LEGACY_MODEL_FILE = "model.h5"
SCALER_FILE = "scaler.save"


_forward: Any = None


def _forward_pass() -> Any:
    """The compiled forward pass, imported on first use (Numba stays out of import paths
    that never predict); an import statement in the request path costs a microsecond."""
    global _forward
    if _forward is None:
        from core.families.dense_kernel import predict_one

        _forward = predict_one
    return _forward


class Autoencoder(Family):
    name = "autoencoder"
    framework = "tensorflow"
    defaults: ClassVar[dict[str, Any]] = {
        "hidden_layers": [16, 8, 16],
        "dropout_rate": 0.2,
        "learning_rate": 0.003,
        "epochs": 30,
        "batch_size": 256,
        "noise_rate": 0.3,
        "patience": 4,
    }

    net: dense_numpy.DenseNet
    scaler: Any  # sklearn MinMaxScaler (what is saved)
    minmax: dense_numpy.MinMax
    keras_model: Any = None

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        layers = params["hidden_layers"]
        if not layers or any(not 1 <= h <= 1024 for h in layers):
            raise BadInput(f"hidden_layers must be 1–1024 units each, got {layers}")
        if not 0.0 <= params["dropout_rate"] < 1.0:
            raise BadInput(f"dropout_rate must be in [0, 1), got {params['dropout_rate']}")
        if not 0.0 <= params["noise_rate"] < 1.0:
            raise BadInput(f"noise_rate must be in [0, 1), got {params['noise_rate']}")
        if not 0.0 < params["learning_rate"] <= 1.0:
            raise BadInput(f"learning_rate must be in (0, 1], got {params['learning_rate']}")
        if not 1 <= params["epochs"] <= 10_000:
            raise BadInput(f"epochs must be from 1 to 10000, got {params['epochs']}")
        if not 1 <= params["batch_size"] <= 65_536:
            raise BadInput(f"batch_size must be from 1 to 65536, got {params['batch_size']}")
        if params["patience"] < 0:
            raise BadInput(f"patience must be ≥ 0, got {params['patience']}")

    # ------------------------------------------------------------------ training

    def build(self, hidden: list[int]) -> Any:
        import keras

        inputs = keras.Input(shape=(N_CATEGORIES,), name="ratings")
        x = inputs
        for i, units in enumerate(hidden):
            x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
            if self.params["dropout_rate"] > 0:
                x = keras.layers.Dropout(self.params["dropout_rate"], name=f"dropout_{i}")(x)
        outputs = keras.layers.Dense(N_CATEGORIES, activation="sigmoid", name="scores")(x)
        return keras.Model(inputs, outputs, name="autoencoder")

    def fit_scaler(self, ratings: np.ndarray) -> None:
        from sklearn.preprocessing import MinMaxScaler

        self.scaler = MinMaxScaler().fit(ratings)
        # A category nobody rated has zero range; keep its scale finite.
        span = self.scaler.data_range_
        if (span == 0).any():
            bounds = np.vstack([np.zeros(N_CATEGORIES), np.full(N_CATEGORIES, 5.0)])
            self.scaler = MinMaxScaler().fit(np.vstack([ratings, bounds]))
        self.minmax = dense_numpy.MinMax.from_sklearn(self.scaler)

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        self.fit_scaler(data.train)
        model = self.build(list(self.params["hidden_layers"]))
        return self.train_keras(model, data, seed=seed, progress=progress)

    def train_keras(
        self, model: Any, data: FitData, *, seed: int, progress: Progress
    ) -> dict[str, Any]:
        """Compile with the masked loss, fit with early stopping, keep the best weights."""
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        params = self.params
        zero = self.minmax.transform(np.zeros(N_CATEGORIES)).astype(np.float32)

        def masked_mse(y_true: Any, y_pred: Any) -> Any:
            target, known = y_true[:, :N_CATEGORIES], y_true[:, N_CATEGORIES:]
            err = keras.ops.sum(known * keras.ops.square(target - y_pred), axis=-1)
            return err / keras.ops.maximum(keras.ops.sum(known, axis=-1), 1.0)

        def dataset(x: np.ndarray, mask: np.ndarray) -> Any:
            """Batches whose inputs hide a fresh random share of known ratings every epoch."""
            scaled = self.minmax.transform(x).astype(np.float32)
            known = mask.astype(np.float32)
            ds = tf.data.Dataset.from_tensor_slices((scaled, known))
            ds = ds.shuffle(min(len(x), 50_000), seed=seed, reshuffle_each_iteration=True)
            rate = params["noise_rate"]

            def corrupt(xs: Any, ks: Any) -> Any:
                drop = tf.logical_and(tf.random.uniform(tf.shape(xs)) < rate, ks > 0)
                noisy = tf.where(drop, tf.broadcast_to(zero, tf.shape(xs)), xs)
                return noisy, tf.concat([xs, ks], axis=1)

            return ds.batch(params["batch_size"]).map(corrupt).prefetch(2)

        def validation(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """One fixed corruption, so validation losses of different epochs compare."""
            rng = np.random.default_rng(seed + 1)
            drop = (rng.random(x.shape) < params["noise_rate"]) & mask
            scaled = self.minmax.transform(x).astype(np.float32)
            noisy = np.where(drop, zero, scaled).astype(np.float32)
            return noisy, np.hstack([scaled, mask.astype(np.float32)])

        train_ds = dataset(data.train, data.train_mask)
        valid_ds = validation(data.valid, data.valid_mask) if len(data.valid) else None
        model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss=masked_mse)
        epochs = params["epochs"]
        started = time.perf_counter()

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
                logs = logs or {}
                shown = f"loss {logs.get('loss', float('nan')):.4f}"
                if "val_loss" in logs:
                    shown += f", val_loss {logs['val_loss']:.4f}"
                progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}: {shown}")

        callbacks: list[Any] = [Report()]
        if valid_ds is not None and params["patience"] > 0:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=params["patience"], restore_best_weights=True
                )
            )
        fitted = model.fit(
            train_ds,
            validation_data=valid_ds,
            epochs=epochs,
            verbose=0,
            callbacks=callbacks,
            shuffle=False,
        )
        self.keras_model = model
        self.net = net_of(model)
        history: dict[str, Any] = {
            k: [float(v) for v in vals] for k, vals in fitted.history.items()
        }
        history["epochs_run"] = len(history.get("loss", []))
        history["fit_seconds"] = round(time.perf_counter() - started, 3)
        return history

    # ------------------------------------------------------------------ serving

    def predict(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Planwise step 1: scale, forward pass, clip to [0, 1], inverse-scale."""
        x = self.minmax.transform(np.asarray(ratings, dtype=np.float64))
        out = np.clip(self.net(x), 0.0, 1.0).astype(np.float32)
        out -= self.minmax.min  # in place, as scikit-learn's inverse_transform does
        out /= self.minmax.scale
        return out.astype(np.float64)

    def predict_one(self, ratings: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """:meth:`predict` for one user, compiled (see ``dense_kernel``)."""
        return _forward_pass()(
            np.ascontiguousarray(ratings, dtype=np.float64),
            self.minmax.scale,
            self.minmax.min,
            *self.net.packed,
        )

    def save(self, folder: Path) -> None:
        self.keras_model.save(folder / MODEL_FILE)
        joblib.dump(self.scaler, folder / SCALER_FILE)

    @classmethod
    def load(cls, folder: Path, metadata: Mapping[str, Any]) -> Autoencoder:
        # The model file the version was registered with, never whichever is on disk: a
        # model.keras dropped beside an imported model.h5 was never hashed.
        listed = metadata.get("files") or {}
        name = MODEL_FILE if MODEL_FILE in listed else LEGACY_MODEL_FILE
        if name not in listed:
            raise ArtifactIntegrityError(
                f"the version lists neither {MODEL_FILE} nor {LEGACY_MODEL_FILE} among its files"
            )
        path = folder / name
        net = dense_numpy.read(path)
        net.check_autoencoder(path.name)
        model = cls.__new__(cls)
        model.params = dict(metadata.get("hyperparameters") or {})
        model.net = net
        model.scaler = load_scaler(folder / SCALER_FILE)
        model.minmax = dense_numpy.MinMax.from_sklearn(model.scaler, SCALER_FILE)
        return model

    def describe(self) -> str:
        return f"Denoising autoencoder with hidden layers {self.params.get('hidden_layers')}"


def load_scaler(path: Path) -> Any:
    """Unpickle a scaler (only ever called after its SHA-256 was checked, or on import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # version warnings are recorded at import time
        return joblib.load(path)


def net_of(model: Any) -> dense_numpy.DenseNet:
    """The NumPy twin of a Keras model (same weights), for evaluation without ``predict``."""
    layers = []
    for layer in model.layers:
        if layer.__class__.__name__ == "Dense":
            kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
            layers.append(
                dense_numpy.DenseLayer(layer.name, kernel, bias, layer.get_config()["activation"])
            )
    return dense_numpy.DenseNet(tuple(layers))


FAMILY = Autoencoder
