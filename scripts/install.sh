#!/usr/bin/env bash
# Create .venv, install the pinned requirements and then the project itself (editable, without
# dependencies: the pins are the lock), so that `python -m core`, `python -m api`, `python -m jobs`
# and the tests import the packages from any folder without PYTHONPATH; with --dev also the test
# tools and Debian's Chromium for the browser tests. Safe to run again: it only adds what is
# missing (the stamp names the requirements and pyproject.toml, so a change to either reinstalls).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$( (cat requirements.txt requirements-serving.txt pyproject.toml; if [ "${1:-}" = --dev ]; then cat requirements-dev.txt; fi) | sha256sum | cut -c1-16)
# The stamp alone would miss a project uninstalled by hand: its metadata is checked too.
if [ ! -f "$stamp" ] || ! .venv/bin/python -c "import importlib.metadata as m; m.version('planwise-monitor')" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    if [ "${1:-}" = --dev ]; then
        .venv/bin/python -m pip install --quiet -r requirements-dev.txt
    else
        .venv/bin/python -m pip install --quiet -r requirements.txt
    fi
    .venv/bin/python -m pip install --quiet --no-deps -e .
    touch "$stamp"
fi

if [ "${1:-}" = --dev ] && ! command -v chromium >/dev/null 2>&1; then
    echo "installing Chromium from Debian's packages for the browser tests" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if [ "${1:-}" = --dev ] && ! command -v promtool >/dev/null 2>&1; then
    # promtool checks and unit-tests deploy/prometheus/ (tests/integrations/test_prometheus.py).
    echo "installing Prometheus' promtool from Debian's packages for the rule tests" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Compile the request path (ranking, forward pass) once into its cache (__pycache__), so that
# no server or test process pays the few seconds of compilation on its first request.
.venv/bin/python -c "from core.serving import predict; predict.warm_up()"
