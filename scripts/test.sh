#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's Chromium), make sure the local
# PostgreSQL runs, then lint and run the whole suite (SQLite and PostgreSQL, pages, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting the local PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

.venv/bin/ruff check .
.venv/bin/mypy  # core/, api/, jobs/ and dashboard/, as configured in pyproject.toml
.venv/bin/python -m pytest -q "$@"
