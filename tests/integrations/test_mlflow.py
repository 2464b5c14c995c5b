"""MLflow interop against a real ``mlflow server`` (SQLite backend, local artifact root).

Training runs (by hand, and a scheduled run as the worker executes it) are logged with their
parameters, per-epoch losses, dataset version and hash and a tag naming the version; a server
that is down costs the training nothing but a recorded failure; a model registered in MLflow
by a team (Keras autoencoder, scikit-learn TruncatedSVD) is imported and ranks places exactly
as its MLflow copy does.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core import registry, training
from core.accounts.auth import SYSTEM
from core.config import reset_settings
from core.data import catalogue
from core.data.datasets import DatasetInfo
from core.retraining import policies, queue, schedules
from core.serving import predict, ranking
from core.serving.ranking import final_scores
from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.workers import ingest
from tests.integrations.conftest import MlflowServer, free_port

pytestmark = pytest.mark.timeout(900)

USERS = [  # (ratings, lat, lng): users of several tastes in central Madrid
    (
        [5, 0, 0, 4, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        40.4168,
        -3.7038,
    ),
    (
        [0, 0, 4, 0, 0, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        40.4153,
        -3.6845,
    ),
    (
        [0, 1, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 2, 0],
        40.4240,
        -3.7120,
    ),
]


@pytest.fixture
def tracked(
    sqlite_backend: RegistryEnv, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryEnv]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT", f"test-{os.urandom(4).hex()}")
    reset_settings()
    yield sqlite_backend
    reset_settings()


def _client(url: str):  # noqa: ANN202 - mlflow's client, imported lazily
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def _check_run(url: str, record: dict, label: str, dataset: DatasetInfo, steps: int) -> None:
    assert record["status"] == "logged", record
    client = _client(url)
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["rank"] == "4"
    assert run.data.tags["planwise.version"] == label
    assert run.data.tags["planwise.dataset"] == dataset.label
    assert run.data.tags["planwise.dataset_sha256"] == dataset.sha256
    assert "ndcg_at_5" in run.data.metrics and "baseline_ndcg_at_5" in run.data.metrics
    history = client.get_metric_history(record["run_id"], "loss")
    assert [m.step for m in history] == list(range(steps))  # one value per impute round
    inputs = run.inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [
        (dataset.label, dataset.sha256[:32])
    ]


def test_manual_and_scheduled_trainings_are_logged(tracked: RegistryEnv) -> None:
    url = os.environ["MLFLOW_TRACKING_URI"]
    data = ingest(tracked.root, users=300)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "core", "train", "svd", "--dataset", data.label,
         "--param", "rank=4", "--param", "impute_rounds=3"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    manual = registry.get_version(out["model"], out["version"])
    _check_run(url, manual.metadata["mlflow"], manual.label, data, steps=3)

    schedules.set_schedule(
        actor=SYSTEM, model="svd", every_s=3600, dataset=data.name,
        params={"rank": 4, "impute_rounds": 2},
    )  # fmt: skip
    run = queue.fire("svd", scheduled_for=dt.datetime.now(dt.UTC))
    assert run is not None
    outcome = policies.execute(run)
    scheduled = registry.get_version("svd", outcome.version)
    _check_run(url, scheduled.metadata["mlflow"], scheduled.label, data, steps=2)


def test_mlflow_down_never_fails_a_training(
    sqlite_backend: RegistryEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody there
    reset_settings()
    data = ingest(sqlite_backend.root, users=200)
    started = time.monotonic()
    result = training.train(actor=SYSTEM, family="popularity", dataset=data.label)
    elapsed = time.monotonic() - started
    record = registry.get_version("popularity", result.version.version).metadata["mlflow"]
    assert record["status"] == "failed"
    assert record["attempts"] == 3 and len(record["errors"]) == 3
    assert all("attempt" in e for e in record["errors"])
    assert elapsed < 30, f"a server that is down cost the training {elapsed:.1f} s"


class _Flaky(http.server.ThreadingHTTPServer):
    """A proxy in front of the MLflow server that answers 503 to its first ``fail`` requests."""

    def __init__(self, target: str, fail: int) -> None:
        self.target, self.fail, self.seen = target, fail, 0
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                server: _Flaky = self.server  # type: ignore[assignment]
                with lock:
                    server.seen += 1
                    refuse = server.seen <= server.fail
                if refuse:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(
                    server.target + self.path, data=body, method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )  # fmt: skip
                try:
                    with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310
                        status, payload, kind = r.status, r.read(), r.headers["Content-Type"]
                except urllib.error.HTTPError as exc:
                    status, payload, kind = exc.code, exc.read(), exc.headers["Content-Type"]
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815

        super().__init__(("127.0.0.1", 0), Handler)


def test_logging_is_retried_until_the_server_answers(
    tracked: RegistryEnv, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _Flaky(mlflow_server.url, fail=1)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{proxy.server_address[1]}")
        reset_settings()
        data = ingest(tracked.root, users=200)
        result = training.train(
            actor=SYSTEM, family="svd", dataset=data.label, params={"rank": 4, "impute_rounds": 2}
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    record = result.version.metadata["mlflow"]
    assert record["attempts"] == 2 and len(record["errors"]) == 1, record
    _check_run(mlflow_server.url, record, result.version.label, data, steps=2)


def _mlflow_ranking(final: np.ndarray, lat: float, lng: float) -> list[int]:
    cat = catalogue.load()
    ranked = ranking.rank(cat, final, lat, lng, 10, ranking.DEFAULT_CONFIG)
    return cat.place_ids[ranked.indices].tolist()


def _served_ranking(model: str, version: str, prefs: list[int], lat: float, lng: float) -> list:
    return [r.place_id for r in predict.recommend(model, version, prefs, lat=lat, lng=lng, k=10)]


def _import(model_uri: str, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "core", "import-mlflow", "--model-uri", model_uri, *extra],
        cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_keras_autoencoder_from_mlflow_ranks_as_its_mlflow_copy(
    tracked: RegistryEnv, tmp_path: Path
) -> None:
    import joblib
    import mlflow
    import mlflow.keras

    from core.data import datasets
    from core.families.autoencoder import Autoencoder
    from core.families.base import FitData

    data = ingest(tracked.root, users=400)
    ratings = datasets.ratings_matrix(datasets.load_users(data))
    team = Autoencoder({"hidden_layers": [12, 6, 12], "epochs": 3, "dropout_rate": 0.0})
    team.fit(FitData(ratings, ratings > 0, ratings[:50], ratings[:50] > 0), seed=1)
    joblib.dump(team.scaler, tmp_path / "scaler.save")
    # The team logs its network without the training loss (a function of theirs).
    network = team.build([12, 6, 12])
    network.set_weights(team.keras_model.get_weights())
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    with mlflow.start_run():
        mlflow.log_params({"hidden_layers": "12,6,12", "epochs": 3})
        mlflow.log_artifact(str(tmp_path / "scaler.save"))
        mlflow.keras.log_model(
            network, name="model", registered_model_name="team-ae", pip_requirements=[]
        )

    out = _import("models:/team-ae/1", "--name", "team-ae", "--dataset", data.label)
    assert (out["model"], out["family"], out["mlflow"]["flavour"]) == (
        "team-ae",
        "autoencoder",
        "keras",
    )
    version = registry.get_version("team-ae", out["version"])
    lineage = version.metadata["mlflow"]
    assert lineage["params"]["epochs"] == "3" and lineage["run_id"]
    assert version.metrics["ndcg@5"] > 0  # evaluated on the dataset it was given

    mlflow_copy = mlflow.keras.load_model("models:/team-ae/1")
    for prefs, lat, lng in USERS:
        x = np.asarray(prefs, dtype=np.float64)
        scaled = team.scaler.transform(x[None, :])
        out_scores = np.clip(mlflow_copy.predict(scaled, verbose=0), 0, 1)
        predicted = team.scaler.inverse_transform(out_scores)[0]
        final = final_scores(x, x > 0, predicted)
        served = _served_ranking("team-ae", out["version"], prefs, lat, lng)
        assert served == _mlflow_ranking(final, lat, lng)
        assert len(served) == 10


def test_a_scikit_learn_svd_from_mlflow_ranks_as_its_mlflow_copy(tracked: RegistryEnv) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.decomposition import TruncatedSVD
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from core.data import datasets

    data = ingest(tracked.root, users=400)
    ratings = datasets.ratings_matrix(datasets.load_users(data))
    pipe = Pipeline(
        [
            (
                "impute",
                SimpleImputer(missing_values=0.0, strategy="mean", keep_empty_features=True),
            ),
            ("svd", TruncatedSVD(6, random_state=0)),
        ]
    ).fit(ratings)
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            pipe, name="model", serialization_format="cloudpickle",
            registered_model_name="Team SVD", pip_requirements=[],
        )  # fmt: skip

    out = _import("models:/Team SVD/1")
    assert (out["model"], out["family"]) == ("Team-SVD", "svd")  # a valid name here
    mlflow_copy = mlflow.sklearn.load_model("models:/Team SVD/1")
    for prefs, lat, lng in USERS:
        x = np.asarray(prefs, dtype=np.float64)
        recon = mlflow_copy[-1].inverse_transform(mlflow_copy.transform(x[None, :]))[0]
        final = final_scores(x, x > 0, np.clip(recon, 0, 5))
        assert _served_ranking("Team-SVD", out["version"], prefs, lat, lng) == _mlflow_ranking(
            final, lat, lng
        )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/team-ae", "must be models:/NAME/VERSION"),
        ("models:/nobody/3", "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_bad_model_uris_are_one_line_and_exit_2(
    tracked: RegistryEnv, uri: str, message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core", "import-mlflow", "--model-uri", uri],
        cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert registry.list_models() == []
