#!/usr/bin/env bash
# Install, then start the product on the embedded default (SQLite under data/): the schema is
# created, a demo is bootstrapped on first start, and the worker, the API and the dashboard
# run side by side until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

PY=.venv/bin/python
$PY -m core init
if [ "$($PY -m core models list --json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ]; then
    echo "first start: bootstrapping the demo (datasets, trained models, traffic)…" >&2
    $PY -m core demo
fi

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait; }
trap cleanup EXIT INT TERM

if [ -f jobs/worker.py ]; then
    $PY -m jobs.worker & pids+=($!)
fi
if [ -f api/__main__.py ]; then
    $PY -m api --host 127.0.0.1 --port "${API_PORT:-8000}" & pids+=($!)
fi
.venv/bin/streamlit run dashboard/app.py --server.port "${PORT:-8501}" & pids+=($!)
wait -n
