"""Entry point of the dashboard: ``streamlit run dashboard/app.py``.

It only routes. Who may see which page follows the signed-in account: anonymous sessions see
the sign-in page, an account with a one-time password sees only the password page, everyone
else the pages of the product (and admins the user accounts).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import cache, session, ui  # noqa: E402

st.set_page_config(
    page_title="Planwise Monitor",
    page_icon=":material/insights:",
    layout="wide",
    initial_sidebar_state="expanded",
)

cache.ensure_ready()
user = session.current()


def _page(path: str, title: str, icon: str, **kwargs: object) -> st.Page:
    return st.Page(f"app_pages/{path}", title=title, icon=icon, **kwargs)  # type: ignore[arg-type]


def _refresh() -> None:
    cache.registry_changed()


if user is None:
    pages: object = [_page("sign_in.py", "Sign in", ":material/login:", url_path="sign-in")]
elif user.must_change_password:
    pages = [_page("account.py", "Change password", ":material/key:", url_path="account")]
else:
    account = [_page("account.py", "Account", ":material/person:", url_path="account")]
    if user.actor.can("admin"):
        account.append(_page("users.py", "Users", ":material/group:", url_path="users"))
    pages = {
        "Registry": [
            _page("overview.py", "Overview", ":material/dashboard:", url_path="overview"),
            _page("models.py", "Models", ":material/inventory_2:", url_path="models"),
            _page("compare.py", "Compare", ":material/compare_arrows:", url_path="compare"),
        ],
        "Review": [
            _page("preview.py", "Preview", ":material/map:", url_path="preview"),
            _page("audit.py", "Audit", ":material/fact_check:", url_path="audit"),
        ],
        "Operate": [
            _page("deploy.py", "Deploy", ":material/rocket_launch:", url_path="deploy"),
            _page("jobs.py", "Jobs", ":material/schedule:", url_path="jobs"),
        ],
        "Monitor": [
            _page("data_drift.py", "Data drift", ":material/ssid_chart:", url_path="data-drift"),
            _page(
                "prediction_drift.py",
                "Prediction drift",
                ":material/query_stats:",
                url_path="prediction-drift",
            ),
            _page("monitoring.py", "Monitoring", ":material/monitor_heart:", url_path="monitoring"),
            _page(
                "explorer.py", "Request explorer", ":material/manage_search:", url_path="explorer"
            ),
            _page("report.py", "Slices & report", ":material/summarize:", url_path="report"),
        ],
        "Account": account,
    }

current = st.navigation(pages)  # type: ignore[arg-type]

if user is not None:
    with st.sidebar:
        st.markdown(f"Signed in as **{ui.md(user.username)}** {ui.badge(user.role)}")
        st.caption(session.ROLE_ABILITIES.get(user.role, ""))
        left, right = st.columns(2)
        left.button(
            "Refresh",
            key="app_refresh",
            icon=":material/refresh:",
            on_click=_refresh,
            help="Re-read the registry now (it is re-read every few seconds anyway).",
        )
        right.button(
            "Sign out", key="app_sign_out", icon=":material/logout:", on_click=session.sign_out
        )

current.run()
