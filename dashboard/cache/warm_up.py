"""The warm-up at server start: what the pages' first visits need, computed in a thread.

Started by the first run of the app (the sign-in page), so while a person types a password
the heavy libraries are imported, the catalogue and the served versions loaded, the compiled
ranking code loaded, and the default views of Preview, Compare and Audit computed into the
caches the pages read (through the same cached calls, so the entries are theirs). Last, what
all that left in memory is set aside from the garbage collector (:func:`_freeze_heap`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from dashboard.cache.cached import cached
from dashboard.cache.ranking import audit_review, list_diff, predicted_categories, recommend
from dashboard.cache.registry import (
    GENERATED,
    artifact_status,
    catalogue_points,
    catch_all_categories,
    dataset_list,
    models,
    newest,
    users,
    versions,
)

log = logging.getLogger(__name__)

# Imported first: the libraries and modules every page that ranks or draws needs.
MODULES = (
    "plotly.express",
    "pandas.io.formats.style",
    "core.serving.predict",
    "core.review.comparison",
    "core.review.audit_review",
    "core.review.report",
    "core.families",
    "dashboard.charts",
    "dashboard.cache.figures",
)
# Imported last, still in the thread: the drift and monitoring pages' modules (Evidently,
# SciPy). The pages import them at first use, so the sign-in page never waits for them, and
# this makes that first use cheap (the Data drift page's first visit took 2.5 s without it).
MONITORING_MODULES = (
    "dashboard.cache.monitoring",
    "dashboard.cache.insight",
    "dashboard.cache.rollout",
    "dashboard.drift_view",
    "dashboard.monitor_charts",
    "core.monitoring.drift",
)


@cached(resource=True)
def start_warm_up() -> dict[str, float]:
    """Start the warm-up, once per process and registry; the seconds per step, filled as the
    thread goes (``"total"`` once it finished)."""
    timings: dict[str, float] = {}
    thread = threading.Thread(
        target=_warm,
        args=(timings,),
        kwargs={"freeze": True},
        name="dashboard-warm-up",
        daemon=True,
    )
    thread.start()
    return timings


def warm_up_done(timeout: float | None = None) -> dict[str, float] | None:
    """Seconds per warm-up step once it finished (None while running): for the benchmark."""
    timings = start_warm_up()
    deadline = None if timeout is None else time.monotonic() + timeout
    while "total" not in timings:
        if deadline is not None and time.monotonic() > deadline:
            return None
        threading.Event().wait(0.05)
    return timings


def _warm(timings: dict[str, float], *, freeze: bool = False) -> None:
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

    def catalogue() -> None:
        from core.data import catalogue
        from core.serving import predict

        catalogue.load()
        catalogue_points()
        catch_all_categories()
        predict.warm_up()

    step("imports", lambda: _import_all(MODULES))
    step("catalogue and compiled code", catalogue)
    try:
        step("views", _warm_views)
        step("monitoring pages", lambda: _import_all(MONITORING_MODULES))
        if freeze:
            step("heap frozen", _freeze_heap)
    finally:
        timings["total"] = time.perf_counter() - start
        log.info("dashboard warm-up done in %.1f s", timings["total"])


def _freeze_heap() -> None:
    """Keep what the server holds for good out of every later garbage collection.

    Streamlit runs a full collection after every page run (``runner.postScriptGC``), and
    Python one now and then: each walked the ~400,000 objects of TensorFlow, pandas, Plotly,
    Evidently and the warmed caches, 0.25–0.35 s holding the GIL, on every page run. Frozen,
    a collection looks only at what was made since: milliseconds. The garbage made so far is
    collected first, so none of it is kept. Only the served process does this (the page tests
    call :func:`_warm` without it).
    """
    gc.collect()
    gc.freeze()


def _import_all(modules: tuple[str, ...]) -> None:
    import importlib

    for module in modules:
        importlib.import_module(module)


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
