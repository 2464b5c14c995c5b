"""MLflow interop: training runs logged to a team's tracking server, and models registered
there brought into this registry.

MLflow is the team's notebook of experiments, not part of the serving path, so logging to it
never decides whether a training succeeds: each run is tried ``MLFLOW_ATTEMPTS`` times with
short request timeouts, and the outcome (the MLflow run, or why there is none) is kept in the
version's metadata, where the Versions page and ``models show`` read it.

A model registered in MLflow enters through the same doors as a file on disk: a Keras
autoencoder goes through :func:`core.training.legacy.import_legacy` (the dense-stack and scaler
checks), a scikit-learn ``TruncatedSVD``/``PCA`` (optionally after a ``SimpleImputer`` that
treats 0 as "not rated") becomes an ``svd`` version through
:func:`core.training.uploads.register_files` (both in :mod:`core.training.mlflow_flavours`).
Its MLflow lineage (run, parameters, metrics, dataset inputs) is kept in the metadata.

``mlflow`` (the ``mlflow-skinny`` client) is imported here only, and only when used.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.accounts.auth import Actor, require
from core.config import get_settings, mask_url
from core.data.datasets import DatasetInfo
from core.errors import BadInput, CoreError, NotFound
from core.registry.entities import VersionInfo
from core.training.mlflow_flavours import download, import_keras, import_sklearn

log = logging.getLogger(__name__)

TAG_PREFIX = "planwise."
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/]{1,256})/(?P<version>[0-9]{1,9})$")
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM_LENGTH = 6000  # what an MLflow server accepts for one parameter value


class MlflowUnavailable(CoreError):
    """The tracking server did not answer (or refused) within the attempts allowed."""


def enabled() -> bool:
    return bool(get_settings().mlflow_tracking_uri)


def metric_name(name: str) -> str:
    """MLflow's metric names allow no ``@``: ``ndcg@5`` is logged as ``ndcg_at_5``."""
    return _METRIC_NAME.sub("_", name.replace("@", "_at_"))


def _client(uri: str) -> Any:
    """A client whose requests fail fast: this module retries on its own terms."""
    timeout = get_settings().mlflow_timeout_seconds
    # MLflow reads these per request; its defaults (7 retries, 120 s each) would hold a
    # training for many minutes when the server is down.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(timeout))))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # noqa: BLE001 - created meanwhile by another trainer: read it again
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


# ------------------------------------------------------------------------ logging training


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[metric_name(key)] = float(value)
    return out


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_once(
    client: Any,
    *,
    experiment: str,
    model: str,
    family: str,
    params: Mapping[str, Any],
    history: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    dataset: DatasetInfo,
    seed: int,
    description: str,
) -> tuple[str, str]:
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

    experiment_id = _experiment_id(client, experiment)
    tags = {
        f"{TAG_PREFIX}model": model,
        f"{TAG_PREFIX}family": family,
        f"{TAG_PREFIX}dataset": dataset.label,
        f"{TAG_PREFIX}dataset_sha256": dataset.sha256,
        f"{TAG_PREFIX}seed": str(seed),
        "mlflow.note.content": description or f"{family} training of {model}",
    }
    run = client.create_run(experiment_id, run_name=f"{model} ({family})", tags=tags)
    run_id = str(run.info.run_id)
    try:
        now = int(time.time() * 1000)
        logged_params = [
            Param(str(k)[:250], str(v)[:MAX_PARAM_LENGTH])
            for k, v in {**params, "family": family, "seed": seed}.items()
        ]
        series: list[Metric] = []
        for key, values in history.items():
            if isinstance(values, list):  # one value per epoch (or impute round)
                series.extend(
                    Metric(metric_name(key), float(v), now, step)
                    for step, v in enumerate(values)
                    if isinstance(v, int | float) and math.isfinite(float(v))
                )
        finals = {
            **_numbers(metrics),
            **{f"baseline_{k}": v for k, v in _numbers(baseline).items()},
        }
        series.extend(Metric(k, v, now, 0) for k, v in finals.items())
        for chunk in _batches(logged_params, 100):
            client.log_batch(run_id, params=chunk)
        for metric_chunk in _batches(series, 1000):
            client.log_batch(run_id, metrics=metric_chunk)
        source = f"planwise-dataset:{dataset.label}"
        client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    Dataset(dataset.label, dataset.sha256[:32], "planwise", source),
                    tags=[InputTag("mlflow.data.context", "training")],
                )
            ],
        )
        client.set_tag(run_id, f"{TAG_PREFIX}version", "pending registration")
        # MLflow writes links to the run on stdout, where the CLI's JSON goes: kept out of it.
        with contextlib.redirect_stdout(io.StringIO()) as said:
            client.set_terminated(run_id, "FINISHED")
        log.debug("MLflow: %s", said.getvalue().strip())
    except BaseException:
        with contextlib.suppress(Exception):  # half a run is worse than none
            client.delete_run(run_id)
        raise
    return experiment_id, run_id


def log_training(
    *,
    model: str,
    family: str,
    params: Mapping[str, Any],
    history: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    dataset: DatasetInfo,
    seed: int = 0,
    description: str = "",
) -> dict[str, Any] | None:
    """Log one training run to MLflow; the record to keep in the version's metadata.

    None when ``MLFLOW_TRACKING_URI`` is not set. Never raises: a server that is down is
    retried ``MLFLOW_ATTEMPTS`` times and the failure is what the record says.
    """
    settings = get_settings()
    uri = settings.mlflow_tracking_uri
    if not uri:
        return None
    record: dict[str, Any] = {
        "tracking_uri": mask_url(uri),
        "experiment": settings.mlflow_experiment,
        "status": "failed",
        "attempts": 0,
    }
    errors: list[str] = []
    for attempt in range(1, settings.mlflow_attempts + 1):
        record["attempts"] = attempt
        try:
            client = _client(uri)
            experiment_id, run_id = _log_once(
                client,
                experiment=settings.mlflow_experiment,
                model=model,
                family=family,
                params=params,
                history=history,
                metrics=metrics,
                baseline=baseline,
                dataset=dataset,
                seed=seed,
                description=description,
            )
        except Exception as exc:  # noqa: BLE001 - MLflow must never fail a training
            errors.append(f"attempt {attempt}: {type(exc).__name__}: {str(exc)[:300]}")
            log.warning("MLflow logging attempt %s of %s failed: %s", attempt, model, exc)
            if attempt < settings.mlflow_attempts:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            continue
        record.update(
            status="logged",
            experiment_id=experiment_id,
            run_id=run_id,
            run_url=run_url(uri, experiment_id, run_id),
        )
        break
    if errors:
        record["errors"] = errors
    return record


def link_version(record: Mapping[str, Any] | None, version: VersionInfo) -> bool:
    """Tag the MLflow run with the version it became (a link back to this registry).

    Best effort: the version already names its run in its metadata; a failure is logged.
    """
    if not record or record.get("status") != "logged":
        return False
    uri = get_settings().mlflow_tracking_uri
    if not uri:
        return False
    for attempt in range(1, get_settings().mlflow_attempts + 1):
        try:
            client = _client(uri)
            client.set_tag(record["run_id"], f"{TAG_PREFIX}version", version.label)
            client.set_tag(record["run_id"], f"{TAG_PREFIX}version_number", version.version)
            return True
        except Exception as exc:  # noqa: BLE001 - the link is a convenience
            log.warning("could not tag MLflow run %s with %s: %s", record["run_id"], version, exc)
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
    return False


# ------------------------------------------------------------------------ importing a model


def parse_model_uri(model_uri: str) -> tuple[str, str]:
    match = _MODEL_URI.match(model_uri.strip())
    if not match:
        raise BadInput(f"--model-uri must be models:/NAME/VERSION, got {model_uri!r}")
    return match["name"], match["version"]


def _unreachable(uri: str, exc: Exception) -> CoreError:
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return NotFound(f"MLflow at {mask_url(uri)}: {exc.message}")
    return MlflowUnavailable(f"MLflow at {mask_url(uri)} did not answer: {str(exc)[:300]}")


def _lineage(client: Any, uri: str, name: str, number: str) -> tuple[dict[str, Any], str | None]:
    """What MLflow knows of the version: its run, parameters, metrics and dataset inputs."""
    mv = client.get_model_version(name, number)
    lineage: dict[str, Any] = {
        "tracking_uri": mask_url(uri),
        "model_uri": f"models:/{name}/{number}",
        "registered_model": name,
        "version": str(mv.version),
        "source": mv.source,
        "run_id": mv.run_id,
        "description": mv.description or "",
    }
    if mv.run_id:
        run = client.get_run(mv.run_id)
        lineage.update(
            experiment_id=run.info.experiment_id,
            run_name=run.info.run_name,
            run_url=run_url(uri, run.info.experiment_id, mv.run_id),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            datasets=[
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "source_type": d.dataset.source_type,
                    "source": d.dataset.source,
                }
                for d in (run.inputs.dataset_inputs if run.inputs else [])
            ],
        )
    return lineage, mv.run_id


def import_mlflow(
    *,
    actor: Actor,
    model_uri: str,
    name: str | None = None,
    dataset: str | None = None,
    description: str = "",
) -> VersionInfo:
    """Register the model version ``models:/NAME/VERSION`` of the MLflow tracking server.

    Keras flavour → an ``autoencoder`` version (its MinMaxScaler is the source run's artifact
    ``scaler.save``, or a ``scaler.save`` beside the model's ``MLmodel``); scikit-learn
    flavour → an ``svd`` version. Given ``dataset``, the version is evaluated on it.
    """
    require(actor, "operate", "import models")
    source_name, number = parse_model_uri(model_uri)
    uri = get_settings().mlflow_tracking_uri
    if not uri:
        raise BadInput("set MLFLOW_TRACKING_URI to the MLflow server to import from")
    client = _client(uri)
    with tempfile.TemporaryDirectory(prefix="mlflow-import-") as tmp:
        try:
            lineage, run_id = _lineage(client, uri, source_name, number)
            local = download(uri, Path(tmp) / "model", artifact_uri=model_uri)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors, as one line
            raise _unreachable(uri, exc) from exc
        from mlflow.models import Model

        try:
            flavours = Model.load(str(local / "MLmodel")).flavors
        except Exception as exc:  # noqa: BLE001 - not an MLflow model folder
            raise BadInput(f"{model_uri} has no readable MLmodel file: {exc}") from exc
        target = name or _registry_name(source_name)
        text = description or f"Imported from MLflow {model_uri}"
        if "keras" in flavours:
            lineage["flavour"] = "keras"
            return import_keras(
                actor,
                uri,
                local,
                flavours["keras"],
                run_id,
                Path(tmp),
                target,
                dataset,
                text,
                lineage,
            )
        if "sklearn" in flavours:
            lineage["flavour"] = "sklearn"
            return import_sklearn(actor, local, target, dataset, text, lineage)
    raise BadInput(
        f"{model_uri} has the flavour(s) {', '.join(sorted(flavours))}; only keras "
        "(autoencoder) and sklearn (TruncatedSVD/PCA → svd) models can be imported"
    )


def _registry_name(name: str) -> str:
    """The MLflow name made a valid model name of this registry (letters, digits, -_.)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "mlflow-model"
    return cleaned[:64]
