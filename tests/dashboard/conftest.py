"""AppTest fixtures: a registry with one account per role, empty or populated.

Pages run in this process, against the registry the fixtures point the environment at; the
SQLite registries are copies of templates built once per session (see :class:`Templates`),
the PostgreSQL ones are built afresh. Dashboard caches are cleared around every test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import reset_settings
from core.db import migrate
from tests.conftest import PROJECT_ROOT, RegistryEnv, make_env
from tests.dashboard.builders import MODEL, PASSWORDS, Populated, create_accounts, populate

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
