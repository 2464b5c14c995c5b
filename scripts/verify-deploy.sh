#!/usr/bin/env bash
# The deployment test: build the images of deploy/Dockerfile on a base image made here from
# Debian's packages (no registry needed), bring up deploy/compose.yaml (PostgreSQL, the
# S3-compatible store, init, two workers, two API replicas behind HAProxy, the dashboard) and
# run the failure drill of deploy/loadcheck.py under load. Prints a summary table; exits 0
# when every promise held, 1 when one did not, 3 when dockerd cannot be reached.
#
#   sudo bash scripts/verify-deploy.sh [--keep]      # --keep: leave the stack running
#
# Cached between runs: the debootstrap tree and the base image (VERIFY_CACHE, default
# /var/cache/planwise-deploy), and every image layer (dependencies are rebuilt only when a
# requirements file changes, the code layers when the code does).
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
CACHE=${VERIFY_CACHE:-/var/cache/planwise-deploy}
BASE=${VERIFY_BASE_IMAGE:-planwise-base:bookworm}
PROJECT=${VERIFY_PROJECT:-planwise-verify}
export IMAGE_TAG=verify
export API_PORT=${VERIFY_API_PORT:-18080} DASHBOARD_PORT=${VERIFY_DASHBOARD_PORT:-18501}
export API_WORKERS=${VERIFY_API_WORKERS:-1} DEMO=1 DEMO_USERS=${VERIFY_DEMO_USERS:-400}
export DEMO_DAYS=1 DEMO_EPOCHS=${VERIFY_DEMO_EPOCHS:-3}
export BASE_IMAGE=$BASE
export POSTGRES_PASSWORD=verify-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export API_KEYS=key-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
CODE_REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- core api dashboard jobs 2>/dev/null)" ]; then
    CODE_REVISION="$CODE_REVISION-dirty"
fi
export CODE_REVISION
COMPOSE=(docker-compose -p "$PROJECT" -f deploy/compose.yaml)
say() { printf '[verify-deploy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
started=$(date +%s)

if ! docker info >/dev/null 2>&1; then
    say "dockerd cannot be reached (start it as root: dockerd &)"
    exit 3
fi

# ------------------------------------------------------------------ the base image
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    if [ ! -x "$CACHE/rootfs/usr/bin/python3" ]; then
        say "making a Debian bookworm tree with debootstrap (once; cached in $CACHE)"
        mkdir -p "$CACHE"
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log"
    fi
    cp /etc/ssl/certs/ca-certificates.crt "$CACHE/rootfs/etc/ssl/certs/ca-certificates.crt"
    # debootstrap's downloaded packages and package lists: 100 MB no image needs
    rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb "$CACHE"/rootfs/var/lib/apt/lists/*
    say "importing $BASE"
    tar -C "$CACHE/rootfs" -c . | docker import - "$BASE" >/dev/null
fi

# ------------------------------------------------------------------ the images
# The legacy builder: it needs no buildx plugin, and --network host lets pip and apt reach
# the package registries. Cached layers make a rebuild of unchanged code a few seconds.
declare -A SIZES
for target in postgres store balancer training serving; do
    say "building planwise-$target:$IMAGE_TAG"
    DOCKER_BUILDKIT=0 docker build --quiet --network host -f deploy/Dockerfile \
        --target "$target" --build-arg BASE_IMAGE="$BASE" \
        --build-arg CODE_REVISION="$CODE_REVISION" \
        -t "planwise-$target:$IMAGE_TAG" . >/tmp/verify-deploy-build.log 2>&1 \
        || { tail -n 30 /tmp/verify-deploy-build.log >&2; exit 1; }
    SIZES[$target]=$(docker image inspect -f '{{.Size}}' "planwise-$target:$IMAGE_TAG")
done
build_s=$(( $(date +%s) - started ))

say "checking the serving image holds no TensorFlow"
docker run --rm -e PYTHONWARNINGS=ignore "planwise-serving:$IMAGE_TAG" sh -c 'python -c "$0" 2>/tmp/err || { cat /tmp/err >&2; exit 1; }' '
import importlib.util, sys
# what the API and the dashboard load (the pages run on import: the dashboard stack runs them)
import api.app, core.serving.predict, dashboard.cache, dashboard.charts
import dashboard.cache.monitoring, dashboard.cache.insight, dashboard.cache.rollout
import dashboard.cache.figures
assert importlib.util.find_spec("tensorflow") is None, "tensorflow is installed"
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
assert not loaded, loaded
print("serving image: no tensorflow")'

# ------------------------------------------------------------------ the stack
cleanup() {
    if [ "$KEEP" = 0 ]; then
        "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
say "starting the stack (init trains the first versions: a few minutes)"
up_start=$(date +%s)
if ! "${COMPOSE[@]}" up -d --no-build >/tmp/verify-deploy-up.log 2>&1; then
    cat /tmp/verify-deploy-up.log >&2
    "${COMPOSE[@]}" logs --tail 40 init >&2 || true
    exit 1
fi
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 \
        && curl -fsS "http://127.0.0.1:$DASHBOARD_PORT/_stcore/health" >/dev/null 2>&1 && break
    sleep 1
done
up_s=$(( $(date +%s) - up_start ))

set +e
python3 deploy/loadcheck.py --project "$PROJECT" --api "http://127.0.0.1:$API_PORT" \
    --dashboard "http://127.0.0.1:$DASHBOARD_PORT" --key "$API_KEYS" --lease 30
drill=$?
set -e

db=$("${COMPOSE[@]}" ps -q db)
revisions=$(docker exec "$db" psql -h /tmp -U planwise -d planwise -Atc \
    "select coalesce(string_agg(distinct metadata::json->>'code_revision', ','), '') from model_versions")
partitions=$(docker exec "$db" psql -h /tmp -U planwise -d planwise -Atc \
    "select count(*) from pg_inherits where inhparent = 'prediction_logs'::regclass")
stored=$(docker exec "$("${COMPOSE[@]}" ps -q store)" python -c '
import boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
print(s3.list_objects_v2(Bucket="planwise-artifacts").get("KeyCount", 0))')

mb() { echo $(( $1 / 1000000 )); }
printf '\n%-36s %s\n' "image" "size (MB)"
for target in serving training postgres balancer store; do
    printf '%-36s %s\n' "planwise-$target:$IMAGE_TAG" "$(mb "${SIZES[$target]}")"
done
printf '\n%-36s %s\n' "code revision baked in" "$CODE_REVISION"
printf '%-36s %s\n' "revisions recorded by trained versions" "$revisions"
printf '%-36s %s\n' "objects in the S3 store" "$stored"
printf '%-36s %s\n' "prediction_logs partitions" "$partitions"
printf '%-36s %s s\n' "build (cached layers reused)" "$build_s"
printf '%-36s %s s\n' "stack up (init included)" "$up_s"
printf '%-36s %s s\n' "whole run" "$(( $(date +%s) - started ))"

status=$drill
if [ "$revisions" != "$CODE_REVISION" ]; then
    echo "FAIL  versions trained in the stack record '$revisions', not '$CODE_REVISION'"
    status=1
fi
[ "$stored" -gt 0 ] || { echo "FAIL  no artifact in the S3-compatible store"; status=1; }
[ "$partitions" -gt 0 ] || { echo "FAIL  prediction_logs is not partitioned"; status=1; }
exit $status
