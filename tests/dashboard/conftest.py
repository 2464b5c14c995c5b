"""AppTest fixtures: a registry with one account per role, empty, populated or with simulated
traffic, and the helpers the page tests share.

Pages run in this process, against the registry the fixtures point the environment at; the
SQLite registries are copies of templates built once per session (see :class:`Templates` and
:func:`monitor_template`), the PostgreSQL ones are built afresh. Dashboard caches are cleared
around every test.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import registry, training
from core.accounts.auth import SYSTEM
from core.config import reset_settings
from core.data.generator import DriftEpisode
from core.db import migrate
from core.demo import simulate
from tests.conftest import PROJECT_ROOT, RegistryEnv, make_env
from tests.fixtures.dashboard import (
    MODEL,
    PASSWORDS,
    Populated,
    create_accounts,
    ingest_users,
    populate,
)

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
TIMEOUT = 30  # the machine running the suite may be busy
PAGES = {
    "overview": "app_pages/overview.py",
    "models": "app_pages/models.py",
    "compare": "app_pages/compare.py",
    "preview": "app_pages/preview.py",
    "audit": "app_pages/audit.py",
    "deploy": "app_pages/deploy.py",
    "account": "app_pages/account.py",
    "users": "app_pages/users.py",
}


class Templates:
    """Registries built once per test session and copied for each test.

    Hashing the accounts' passwords and training the versions cost seconds; a copy of the
    finished folder (SQLite file, artifacts, datasets: every stored path is relative) costs
    milliseconds, and each test still gets a registry of its own to change.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, tuple[Path, Populated | None]] = {}

    def get(self, kind: str) -> tuple[Path, Populated | None]:
        if kind not in self.built:
            folder = self.root / kind
            (folder / "inputs").mkdir(parents=True)
            env, _ = make_env("sqlite", folder)
            with pytest.MonkeyPatch.context() as mp:
                mp.delenv("DATABASE_SCHEMA", raising=False)
                for key, value in env.items():
                    mp.setenv(key, value)
                reset_settings()
                try:
                    migrate.upgrade()
                    create_accounts()
                    made = populate(folder / "inputs") if kind == "populated" else None
                finally:
                    reset_settings()  # closes the engine, so the SQLite file is complete
            self.built[kind] = (folder, made)
        return self.built[kind]


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("dashboard-templates"))


def _copy_of(
    templates: Templates, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RegistryEnv, Populated | None]]:
    source, made = templates.get(kind)
    root = tmp_path / "registry"
    shutil.copytree(source, root)
    env, _ = make_env("sqlite", root)
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    st.cache_data.clear()
    try:
        yield RegistryEnv("sqlite", root, env), made
    finally:
        st.cache_data.clear()
        reset_settings()


@pytest.fixture
def dash_registry(
    templates: Templates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryEnv]:
    """An empty SQLite registry with the test accounts; dashboard caches start cold."""
    for env, _ in _copy_of(templates, "accounts", tmp_path, monkeypatch):
        yield env


@pytest.fixture
def populated_env(
    templates: Templates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RegistryEnv, Populated]]:
    """The registry of :func:`populate` on SQLite, and what it holds."""
    for env, made in _copy_of(templates, "populated", tmp_path, monkeypatch):
        assert made is not None
        yield env, made


@pytest.fixture
def populated(populated_env: tuple[RegistryEnv, Populated]) -> Populated:
    return populated_env[1]


@pytest.fixture
def dash_backend(backend: RegistryEnv) -> Iterator[RegistryEnv]:
    """An empty registry with the test accounts on SQLite and on PostgreSQL, built afresh."""
    st.cache_data.clear()
    create_accounts()
    yield backend
    st.cache_data.clear()


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def sign_in(username: str, password: str | None = None) -> AppTest:
    at = new_app().run()
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password or PASSWORDS[username])
    return submit(at, "sign_in_form")


def submit(at: AppTest, form: str) -> AppTest:
    """Press the submit button of the form with this key, and run."""
    button = next(b for b in at.button if b.key and b.key.startswith(f"FormSubmitter:{form}-"))
    return button.click().run()


def open_page(at: AppTest, page: str, model: str | None = MODEL) -> AppTest:
    """Switch to a page and, where the page has a model picker, choose ``model``."""
    at.switch_page(PAGES[page]).run()
    picker = [s for s in at.selectbox if s.key == f"{page}_model"]
    if model is not None and picker and picker[0].value != model:
        picker[0].select(model).run()
    return at


def table(at: AppTest, *columns: str, index: int = 0) -> pd.DataFrame:
    """The ``index``-th table on the page that has all these columns (tables carry no key)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) > index, f"no table with columns {columns}"
    return found[index]


def assert_clean(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plain(markdown: str) -> str:
    """Markdown text without the escapes the dashboard puts before punctuation."""
    return markdown.replace("\\", "")


# ------------------------------------------------------------------------ simulated traffic
# The monitoring pages (Data drift, Prediction drift, Monitoring) and the insight pages
# (request explorer, slices and report) read a registry with logged traffic and drift results.

MONITOR_PAGES = {
    "data": "app_pages/data_drift.py",
    "prediction": "app_pages/prediction_drift.py",
    "monitoring": "app_pages/monitoring.py",
}
MONITOR_TITLES = {
    "data": "Data drift",
    "prediction": "Prediction drift",
    "monitoring": "Monitoring",
}
QUIET = "popularity"  # in production, but no traffic


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()


@pytest.fixture(scope="session")
def monitor_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry built once per session through ``core``, copied for each test.

    A generated dataset, two trained ``svd`` versions of :data:`MODEL` (production and a 30 %
    canary), :data:`QUIET` in production without traffic, and five simulated days with a
    summer drift episode from day 3: the simulation runs once, and tests that write (a
    report, a resolved alert) never see each other's changes.
    """
    root = tmp_path_factory.mktemp("monitor-registry")
    env, _ = make_env("sqlite", root)
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, env)
        migrate.upgrade()
        create_accounts()
        ds = ingest_users(root, n=300)
        params = {"impute_rounds": 3, "fold_in_rounds": 3}
        first = training.train(
            actor=SYSTEM, family="svd", dataset=ds.label, model=MODEL, params={"rank": 3, **params}
        ).version.version
        second = training.train(
            actor=SYSTEM, family="svd", dataset=ds.label, model=MODEL, params={"rank": 5, **params}
        ).version.version
        registry.promote(
            actor=SYSTEM, model=MODEL, version=first, stage="production", reason="test promotion"
        )
        registry.promote(
            actor=SYSTEM, model=MODEL, version=second, stage="staging", reason="test promotion"
        )
        registry.update_model(
            actor=SYSTEM,
            name=MODEL,
            canary_share=0.3,
            # A hundred requests a day: judged by day (the monitoring job's window).
            settings={"monitor_window_minutes": 24 * 60, "monitor_min_rows": 50},
        )
        quiet = training.train(
            actor=SYSTEM, family="popularity", dataset=ds.label, model=QUIET
        ).version.version
        registry.promote(
            actor=SYSTEM, model=QUIET, version=quiet, stage="production", reason="test promotion"
        )
        simulate.simulate(
            actor=SYSTEM, model=MODEL, days=5, users_per_day=100, drift=DriftEpisode(3)
        )
    reset_settings()  # closes the engine, so the copies below are complete
    yield root


@pytest.fixture
def simulated(
    monitor_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private copy of the simulated registry; dashboard caches start cold."""
    root = tmp_path / "registry"
    shutil.copytree(monitor_template, root)
    env, _ = make_env("sqlite", root)
    _use(monkeypatch, env)
    st.cache_data.clear()
    yield root
    st.cache_data.clear()
    reset_settings()


def open_monitor_page(page: str, user: str = "victor", *, model: str = MODEL) -> AppTest:
    """Sign in, open one of :data:`MONITOR_PAGES` and choose ``model`` where it asks for one."""
    at = sign_in(user)
    at.switch_page(MONITOR_PAGES[page]).run()
    assert_clean(at)
    assert at.title[0].value == MONITOR_TITLES[page]
    if at.selectbox and at.selectbox[0].label == "Model" and at.selectbox[0].value != model:
        at.selectbox[0].select(model).run()
        assert_clean(at)
    return at


def page_text(at: AppTest) -> str:
    """The page's markdown, captions, info and success boxes as one string, without escapes."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [s.value for s in at.success]
    return " ".join(parts).replace("\\", "")


def charts(at: AppTest) -> dict[str, dict]:
    """The page's Plotly figures by widget key, as the browser receives them."""
    out = {}
    for element in at.get("plotly_chart"):
        figure = json.loads(element.proto.spec)
        out[element.proto.id] = figure
    return out


def chart_figure(at: AppTest, key: str) -> dict:
    """The one Plotly figure whose widget key contains ``key``."""
    found = [f for k, f in charts(at).items() if key in k]
    assert len(found) == 1, list(charts(at))
    return found[0]


def picture_alpha(uri: str) -> np.ndarray:
    """Each pixel's opacity (0–255) in a map's backdrop picture (``dashboard.backdrop``: a
    PNG data URI), as an image viewer reads it."""
    head, _, encoded = uri.partition(",")
    assert head == "data:image/png;base64", head
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGBA"))[:, :, 3]
