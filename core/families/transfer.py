"""Fine-tuning a parent autoencoder version on a new dataset.

The parent's layer sizes, weights and scaler are reused (inputs must mean what they meant to
the parent); optionally the encoder half is frozen so only the decoder adapts, which keeps
what was learned from the larger, older data. The parent is recorded in the lineage by
``core.training``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.errors import BadInput
from core.families.autoencoder import Autoencoder
from core.families.base import FitData, Progress, no_progress


class Transfer(Autoencoder):
    name = "transfer"
    defaults: ClassVar[dict[str, Any]] = {
        "dropout_rate": 0.1,
        "learning_rate": 0.002,
        "epochs": 30,
        "batch_size": 128,
        "noise_rate": 0.3,
        "patience": 4,
        "freeze_encoder": False,
    }
    parent: Autoencoder | None = None

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        Autoencoder.check_params({**params, "hidden_layers": [1]})

    def fit(self, data: FitData, *, seed: int, progress: Progress = no_progress) -> dict[str, Any]:
        import keras

        parent = self.parent
        if parent is None:
            raise BadInput("the transfer family needs a parent autoencoder version (--parent)")
        self.scaler, self.minmax = parent.scaler, parent.minmax
        hidden = parent.net.hidden_layers
        keras.utils.set_random_seed(seed)
        model = self.build(hidden)
        dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
        for layer, source in zip(dense, parent.net.layers, strict=True):
            layer.set_weights([source.kernel, source.bias])
        if self.params["freeze_encoder"]:
            bottleneck = int(np.argmin(hidden)) if hidden else 0
            for layer in dense[: bottleneck + 1]:
                layer.trainable = False
        self.params = {**self.params, "hidden_layers": hidden}
        return self.train_keras(model, data, seed=seed, progress=progress)

    def describe(self) -> str:
        frozen = "frozen encoder" if self.params.get("freeze_encoder") else "all layers trained"
        return f"Autoencoder fine-tuned from a parent version ({frozen})"


FAMILY = Transfer
