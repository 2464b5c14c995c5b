"""Entry point of the dashboard: ``streamlit run dashboard/app.py``.

It only routes. Who may see which page follows the signed-in account: anonymous sessions see
the sign-in page, an account with a one-time password sees only the password page, everyone
else the pages of the product (and admins the user accounts).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime import Runtime

from dashboard import cache, session, ui  # the installed project (scripts/install.sh)

st.set_page_config(
    page_title="Planwise Monitor",
    page_icon=":material/insights:",
    layout="wide",
    initial_sidebar_state="expanded",
)

cache.ensure_ready()
if type(Runtime._instance) is Runtime:  # served (page tests run on a stand-in runtime)
    cache.start_warm_up()
user = session.current()


def _page(path: str, title: str, icon: str, **kwargs: object) -> st.Page:
    return st.Page(f"app_pages/{path}", title=title, icon=icon, **kwargs)  # type: ignore[arg-type]


def _refresh() -> None:
    cache.registry_changed()


# (file, title, icon, URL path) of the product's pages, by section.
PRODUCT: dict[str, list[tuple[str, str, str, str]]] = {
    "Registry": [
        ("overview.py", "Overview", ":material/dashboard:", "overview"),
        ("models.py", "Models", ":material/inventory_2:", "models"),
        ("compare.py", "Compare", ":material/compare_arrows:", "compare"),
    ],
    "Review": [
        ("preview.py", "Preview", ":material/map:", "preview"),
        ("audit.py", "Audit", ":material/fact_check:", "audit"),
    ],
    "Operate": [
        ("deploy.py", "Deploy", ":material/rocket_launch:", "deploy"),
        ("jobs.py", "Jobs", ":material/schedule:", "jobs"),
        ("rollout.py", "Rollout", ":material/trending_up:", "rollout"),
    ],
    "Monitor": [
        ("data_drift.py", "Data drift", ":material/ssid_chart:", "data-drift"),
        ("prediction_drift.py", "Prediction drift", ":material/query_stats:", "prediction-drift"),
        ("monitoring.py", "Monitoring", ":material/monitor_heart:", "monitoring"),
        ("explorer.py", "Request explorer", ":material/manage_search:", "explorer"),
        ("report.py", "Slices & report", ":material/summarize:", "report"),
    ],
}
ACCOUNT_PATHS = ("account", "users")


def _standing_in(path: str, title: str, icon: str, *, home: str) -> list[st.Page]:
    """One page (sign-in, or the forced password change) served at every URL of the product.

    A page's identity in Streamlit is its URL path, so a reload or a shared link such as
    ``/models?model=svd`` keeps its path and query while the user signs in, and the run after
    the sign-in opens the page that was asked for instead of "Page not found".
    """
    paths = [entry[3] for section in PRODUCT.values() for entry in section]
    paths += [*ACCOUNT_PATHS, "sign-in"]
    return [
        _page(path, title, icon, url_path=p, default=p == home, visibility="hidden") for p in paths
    ]


if user is None:
    pages: object = _standing_in("sign_in.py", "Sign in", ":material/login:", home="overview")
    position = "hidden"
elif user.must_change_password:
    pages = _standing_in("account.py", "Change password", ":material/key:", home="account")
    position = "hidden"
else:
    account = [_page("account.py", "Account", ":material/person:", url_path="account")]
    if user.actor.can("admin"):
        account.append(_page("users.py", "Users", ":material/group:", url_path="users"))
    pages = {
        section: [_page(f, t, i, url_path=u) for f, t, i, u in entries]
        for section, entries in PRODUCT.items()
    }
    pages["Account"] = account  # type: ignore[index]
    position = "sidebar"

current = st.navigation(pages, position=position)  # type: ignore[arg-type]
session.keep_cookie()

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
