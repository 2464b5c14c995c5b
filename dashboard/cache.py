"""Every cached call of the dashboard, in one place.

* ``st.cache_resource``: start-up work done once per process and registry (schema, first admin).
* ``st.cache_data``: query results. Registry reads live briefly (``REGISTRY_TTL``) and are
  cleared by :func:`registry_changed` after every write, so the page that made a change shows
  it at once; other sessions see it within the TTL, and a promotion from a stale page is
  refused by ``core`` (``expected_revision``) with a message saying why.
  Results that depend only on immutable things (a version number, a dataset version) are
  kept longer.

Each cached function takes ``registry_key`` (the database and artifact locations) as its
first argument, so two registries in one process (tests, benchmarks) never share entries.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import registry
from core.accounts import bootstrap
from core.config import get_settings
from core.data import datasets
from core.data.datasets import DatasetInfo
from core.errors import CoreError
from core.registry import artifacts, audit
from core.registry.entities import AuditVerdict, ModelInfo, Page, StageEvent, VersionInfo
from core.review import comparison
from core.review.audit_review import AuditReview
from core.review.comparison import ListDiff, UserSample

log = logging.getLogger(__name__)

REGISTRY_TTL = 15  # seconds
RESULT_TTL = 3600
GENERATED = "generated users"


def registry_key() -> str:
    s = get_settings()
    return f"{s.resolved_database_url()}|{s.database_schema or ''}|{s.artifacts_root}|{s.data_root}"


# ------------------------------------------------------------------------ start-up


def ensure_ready() -> None:
    """Schema up to date and a first admin account, once per process and registry."""
    _ensure_ready(registry_key())


@st.cache_resource(show_spinner="Preparing the registry…")
def _ensure_ready(registry_key: str) -> bool:
    report = bootstrap.ensure_ready()
    if report.admin_password:
        # Printed to the terminal that started the dashboard, never shown in a browser.
        log.warning(
            "created user 'admin' with one-time password: %s (change it at first sign-in)",
            report.admin_password,
        )
    return True


# ------------------------------------------------------------------------ registry reads


def models() -> list[ModelInfo]:
    return _models(registry_key())


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _models(registry_key: str) -> list[ModelInfo]:
    return registry.list_models()


def model(name: str) -> ModelInfo:
    return _model(registry_key(), name)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _model(registry_key: str, name: str) -> ModelInfo:
    return registry.get_model(name)


def versions(
    *,
    model: str | None = None,
    stage: str | None = None,
    family: str | None = None,
    search: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[VersionInfo]:
    return _versions(registry_key(), model, stage, family, search or None, page, page_size)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _versions(
    registry_key: str,
    model: str | None,
    stage: str | None,
    family: str | None,
    search: str | None,
    page: int,
    page_size: int,
) -> Page[VersionInfo]:
    return registry.list_versions(
        model=model, stage=stage, family=family, search=search, page=page, page_size=page_size
    )


def version(model: str, number: str) -> VersionInfo:
    return _version(registry_key(), model, number)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _version(registry_key: str, model: str, number: str) -> VersionInfo:
    return registry.get_version(model, number)


def stage_holder(model: str, stage: str) -> VersionInfo | None:
    return _stage_holder(registry_key(), model, stage)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _stage_holder(registry_key: str, model: str, stage: str) -> VersionInfo | None:
    return registry.find_version(model, stage)


def newest(model: str, stage: str | None = None) -> VersionInfo | None:
    """The most recently registered version of a model (in ``stage``, if given)."""
    page = versions(model=model, stage=stage, page_size=1)
    return page.items[0] if page.items else None


def timeline(model: str) -> list[StageEvent]:
    return _timeline(registry_key(), model)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _timeline(registry_key: str, model: str) -> list[StageEvent]:
    return registry.timeline(model)


def recent_events(limit: int = 10) -> list[StageEvent]:
    """The newest stage events of all models."""
    return _recent_events(registry_key(), limit)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _recent_events(registry_key: str, limit: int) -> list[StageEvent]:
    return registry.timeline(limit=limit)


def production_history(model: str) -> list[tuple[str, Any, Any]]:
    return _production_history(registry_key(), model)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _production_history(registry_key: str, model: str) -> list[tuple[str, Any, Any]]:
    return registry.production_history(model)


def verdicts(model: str, number: str) -> list[AuditVerdict]:
    return _verdicts(registry_key(), model, number)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _verdicts(registry_key: str, model: str, number: str) -> list[AuditVerdict]:
    return audit.verdicts(model, number)


def artifact_status(v: VersionInfo) -> dict[str, str]:
    """Per-file integrity; hashing large files is slow, so results live for a minute."""
    return _artifact_status(registry_key(), v.artifact_dir, tuple(sorted(v.files.items())))


@st.cache_data(ttl=60, show_spinner="Checking artifact hashes…")
def _artifact_status(
    registry_key: str, artifact_dir: str, files: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    return artifacts.check(artifact_dir, dict(files))


def metric_trend(model: str) -> pd.DataFrame:
    return _metric_trend(registry_key(), model)


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _metric_trend(registry_key: str, model: str) -> pd.DataFrame:
    return comparison.metric_trend(model)


def baseline() -> VersionInfo | None:
    return _baseline(registry_key())


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _baseline(registry_key: str) -> VersionInfo | None:
    return comparison.find_baseline()


def registry_changed() -> None:
    """Forget registry reads after a write, so every page shows the new state."""
    for fn in (
        _models,
        _model,
        _versions,
        _version,
        _stage_holder,
        _timeline,
        _recent_events,
        _production_history,
        _verdicts,
        _artifact_status,
        _metric_trend,
        _baseline,
    ):
        fn.clear()


# ------------------------------------------------------------------------ datasets


def dataset_list() -> list[DatasetInfo]:
    return _dataset_list(registry_key())


@st.cache_data(ttl=REGISTRY_TTL, show_spinner=False)
def _dataset_list(registry_key: str) -> list[DatasetInfo]:
    return datasets.list_datasets()


def users(source: str, *, generated_n: int = 500, seed: int = 0) -> pd.DataFrame:
    """The users of a dataset (``name@version``), or generated ones for :data:`GENERATED`."""
    return _users(registry_key(), source, generated_n, seed)


@st.cache_data(ttl=RESULT_TTL, max_entries=8, show_spinner="Loading users…")
def _users(registry_key: str, source: str, generated_n: int, seed: int) -> pd.DataFrame:
    if source == GENERATED:
        return comparison.generated_users(generated_n, seed=seed)
    # A dataset version never changes (its SHA-256 is checked on load), so keep it long.
    return datasets.load_users(datasets.resolve(source))


def catalogue_points() -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes of every place of the catalogue (a map without tiles)."""
    return _catalogue_points()


@st.cache_resource(show_spinner=False)
def _catalogue_points() -> tuple[np.ndarray, np.ndarray]:
    from core.data import catalogue

    places = catalogue.load()
    return places.lat.copy(), places.lng.copy()


def catch_all_categories(mapping: Any = None) -> list[Any]:
    """``core.data.catalogue.catch_all_categories`` for a model's mapping (computed once each)."""
    key = None if mapping is None else tuple(sorted((c, tuple(t)) for c, t in mapping.items()))
    return _catch_all(key)


@st.cache_resource(show_spinner=False)
def _catch_all(key: tuple[tuple[str, tuple[str, ...]], ...] | None) -> list[Any]:
    from core.data import catalogue

    return catalogue.catch_all_categories(dict(key) if key is not None else None)


# ------------------------------------------------------------------------ predictions


class VersionFailed(CoreError):
    """A registered version could not be loaded or run (shown on the page like a core error)."""


@contextlib.contextmanager
def _running(what: str) -> Iterator[None]:
    """Turn an unexpected failure of a model into a message, so one damaged version does not
    take a whole page down; the traceback goes to the log."""
    try:
        yield
    except CoreError:
        raise
    except Exception as exc:
        log.exception("%s failed", what)
        raise VersionFailed(
            f"{what} failed ({type(exc).__name__}: {exc}); the version's files may be damaged "
            "or written by an incompatible library version"
        ) from exc


def recommend(
    model: str,
    number: str,
    prefs: Sequence[float],
    lat: float,
    lng: float,
    k: int,
) -> list[Any]:
    """One user's list from an explicit version number (never "production": it moves)."""
    return _recommend(
        registry_key(), model, number, tuple(float(p) for p in prefs), float(lat), float(lng), k
    )


@st.cache_data(ttl=RESULT_TTL, max_entries=512, show_spinner=False)
def _recommend(
    registry_key: str,
    model: str,
    number: str,
    prefs: tuple[float, ...],
    lat: float,
    lng: float,
    k: int,
) -> list[Any]:
    from core.serving import predict

    mask = [p > 0 for p in prefs]
    with _running(f"ranking with {model}@{number}"):
        return list(predict.recommend(model, number, prefs, mask=mask, lat=lat, lng=lng, k=k))


def predicted_categories(model: str, number: str, prefs: Sequence[float]) -> np.ndarray:
    return _predicted_categories(registry_key(), model, number, tuple(float(p) for p in prefs))


@st.cache_data(ttl=RESULT_TTL, max_entries=512, show_spinner=False)
def _predicted_categories(
    registry_key: str, model: str, number: str, prefs: tuple[float, ...]
) -> np.ndarray:
    from core.serving import predict

    with _running(f"predicting with {model}@{number}"):
        out = predict.predict_categories(model, number, np.asarray([prefs], dtype=np.float64))
    return np.asarray(out, dtype=np.float64)[0]


def _sample(source: str, n: int, seed: int, *, stratified: bool) -> UserSample:
    from core.review import audit_review

    frame = users(source, generated_n=max(n * 10, 500), seed=seed)
    if stratified:
        return audit_review.stratified_sample(frame, n, seed=seed, source=source)
    return comparison.sample_users(frame, n, seed=seed, source=source)


def list_diff(label_a: str, label_b: str, source: str, n: int, k: int, seed: int) -> ListDiff:
    """The ranked-list difference of two versions given as ``model@version``."""
    return _list_diff(registry_key(), label_a, label_b, source, n, k, seed)


@st.cache_data(ttl=RESULT_TTL, max_entries=32, show_spinner="Ranking places for the sample…")
def _list_diff(
    registry_key: str, label_a: str, label_b: str, source: str, n: int, k: int, seed: int
) -> ListDiff:
    model_a, _, number_a = label_a.partition("@")
    model_b, _, number_b = label_b.partition("@")
    sample = _sample(source, n, seed, stratified=False)
    with _running(f"ranking with {label_a} and {label_b}"):
        return comparison.compare_lists(model_a, number_a, number_b, sample, k=k, model_b=model_b)


def audit_review(
    model: str, number: str, source: str, per_segment: int, k: int, seed: int
) -> AuditReview:
    return _audit_review(registry_key(), model, number, source, per_segment, k, seed)


@st.cache_data(ttl=RESULT_TTL, max_entries=16, show_spinner="Ranking places for the sample…")
def _audit_review(
    registry_key: str, model: str, number: str, source: str, per_segment: int, k: int, seed: int
) -> AuditReview:
    from core.review import audit_review as review

    sample = _sample(source, per_segment, seed, stratified=True)
    with _running(f"ranking with {model}@{number}"):
        return review.review(model, number, sample, k=k)


# ------------------------------------------------------------------------ warm-up


def start_warm_up() -> None:
    """Warm, once per process and registry, what the pages' first visits need, in a thread.

    Started by the first run of the app (the sign-in page), so while a person types a password
    the heavy libraries are imported, the catalogue and the served versions loaded, the
    compiled ranking code loaded, and the default views of Preview, Compare and Audit
    computed into the caches the pages read.
    """
    _warm_up(registry_key())


@st.cache_resource(show_spinner=False)
def _warm_up(registry_key: str) -> dict[str, float]:
    import threading

    timings: dict[str, float] = {}
    thread = threading.Thread(target=_warm, args=(timings,), name="dashboard-warm-up", daemon=True)
    thread.start()
    return timings


def warm_up_done(timeout: float | None = None) -> dict[str, float] | None:
    """Seconds per warm-up step once it finished (None while running): for the benchmark."""
    import threading
    import time

    timings = _warm_up(registry_key())
    deadline = None if timeout is None else time.monotonic() + timeout
    while "total" not in timings:
        if deadline is not None and time.monotonic() > deadline:
            return None
        threading.Event().wait(0.05)
    return timings


def _warm(timings: dict[str, float]) -> None:
    import time

    start = time.perf_counter()

    def step(name: str, action: Any) -> Any:
        t = time.perf_counter()
        try:
            return action()
        except Exception as exc:  # a warm-up failure must never stop the dashboard
            log.info("warm-up step %s failed: %s", name, exc)
            return None
        finally:
            timings[name] = time.perf_counter() - t

    def imports() -> None:
        import importlib

        for module in (
            "plotly.express",
            "pandas.io.formats.style",
            "core.serving.predict",
            "core.review.comparison",
            "core.review.audit_review",
            "core.review.report",
            "core.families",
            "dashboard.charts",
        ):
            importlib.import_module(module)

    def catalogue() -> None:
        from core.data import catalogue
        from core.serving import predict

        catalogue.load()
        catalogue_points()
        catch_all_categories()
        predict.warm_up()

    step("imports", imports)
    step("catalogue and compiled code", catalogue)
    try:
        step("views", _warm_views)
    finally:
        timings["total"] = time.perf_counter() - start
        log.info("dashboard warm-up done in %.1f s", timings["total"])


def _warm_views() -> None:
    """The default view of each page that ranks places, through the same cached calls."""
    from core.data.catalogue import own_types_label
    from core.data.categories import CATEGORIES
    from core.review.comparison import NEIGHBOURHOODS
    from dashboard import ui

    own_types_label("")  # the place-type index the lists show
    sources = dataset_list()
    if sources:  # the user pickers of Preview and Audit
        users(sources[0].label)
    found = models()
    if not found:
        return
    lat, lng = NEIGHBOURHOODS["Sol"]
    zeros = [0.0] * len(CATEGORIES)
    for m in found:  # every served version: Preview shows production, beside others
        for number in (m.production, m.staging):
            if number:
                recommend(m.name, number, zeros, lat, lng, 10)
                predicted_categories(m.name, number, zeros)
    m = next(x for x in found if x.name == ui.default_model(found))
    page = versions(model=m.name, page_size=500)
    by_number = {v.version: v for v in page.items}
    if not by_number:
        return
    # Compare: production (A) against staging or the next version (B), as the page defaults.
    if m.production in by_number:
        numbers = list(by_number)
        chosen = [n for n in (m.production, m.staging) if n in by_number] + [
            n for n in numbers if n not in (m.production, m.staging)
        ][:2]
        others = [n for n in numbers if n != m.production and n in chosen[:4]]
        if others:
            a, b = by_number[m.production], others[0]
            source = a.dataset.label if a.dataset else GENERATED
            list_diff(f"{m.name}@{a.version}", f"{m.name}@{b}", source, 100, 10, 0)
    # Audit: the newest candidate (else the newest version) on its own training data.
    target = newest(m.name, "candidate") or page.items[0]
    source = target.dataset.label if target.dataset else GENERATED
    audit_review(m.name, target.version, source, 5, 10, 0)
    artifact_status(page.items[0])
