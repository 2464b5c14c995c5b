#!/usr/bin/env bash
# Register a model version from files a CI job built, then ask for its promotion to staging
# through the management API (python -m api.manage). No database credentials: a token only.
#
#   MANAGE_URL=https://planwise-manage.internal MANAGE_TOKEN=pwm_... \
#     scripts/ci-promote.sh MODEL FAMILY FILE [FILE ...]
#
# Optional: DATASET=NAME[@VERSION] (the registry evaluates the version on it), STAGE (default
# staging), REASON (goes into the audit log), VERSION (promote this existing version instead
# of uploading; give no FILE then).
#
# Exit status: 0 promoted; 1 a gate refused the promotion (its figures are printed); 2 bad
# input or a refused token; 3 the service did not answer or failed.
set -uo pipefail

die() { echo "ci-promote: $2" >&2; exit "$1"; }

[ $# -ge 2 ] || die 2 "usage: $0 MODEL FAMILY [FILE ...] (MANAGE_URL and MANAGE_TOKEN set)"
[ -n "${MANAGE_URL:-}" ] || die 2 "MANAGE_URL is not set"
[ -n "${MANAGE_TOKEN:-}" ] || die 2 "MANAGE_TOKEN is not set"
command -v curl >/dev/null || die 2 "curl is required"
command -v python3 >/dev/null || die 2 "python3 is required (to read JSON)"
MODEL=$1 FAMILY=$2
shift 2
STAGE=${STAGE:-staging}
REASON=${REASON:-"CI ${CI_PIPELINE_ID:-run} ${CI_COMMIT_SHA:-}"}
BASE=${MANAGE_URL%/}
BODY=$(mktemp)
trap 'rm -f "$BODY"' EXIT

# call METHOD PATH [curl args...]: prints the HTTP status; the body is left in $BODY.
call() {
    local method=$1 path=$2
    shift 2
    curl --silent --show-error --max-time 600 --output "$BODY" --write-out '%{http_code}' \
        --header "Authorization: Bearer $MANAGE_TOKEN" --request "$method" "$@" "$BASE$path" \
        || echo 000
}

json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$BODY"; }

refused() {  # the service's one-line reason, and the exit status for an HTTP status
    local status=$1
    local detail
    detail=$(json 'd.get("detail")' 2>/dev/null || cat "$BODY")
    case $status in
        000) die 3 "no answer from $BASE" ;;
        401|403|404|413|422) die 2 "HTTP $status: $detail" ;;
        *) die 3 "HTTP $status: $detail" ;;
    esac
}

path_model=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$MODEL")

if [ -n "${VERSION:-}" ]; then
    [ $# -eq 0 ] || die 2 "give either VERSION or files to upload, not both"
else
    [ $# -ge 1 ] || die 2 "no model files to upload (or set VERSION)"
    form=(--form "family=$FAMILY" --form "description=${DESCRIPTION:-uploaded by CI}")
    [ -n "${DATASET:-}" ] && form+=(--form "dataset=$DATASET")
    for file in "$@"; do
        [ -f "$file" ] || die 2 "$file does not exist"
        form+=(--form "files=@$file")
    done
    status=$(call POST "/models/$path_model/versions" "${form[@]}")
    [ "$status" = 201 ] || refused "$status"
    VERSION=$(json 'd["version"]')
    echo "registered $MODEL@$VERSION: $(json 'json.dumps(d["metrics"], sort_keys=True)')"
fi

status=$(call GET "/models/$path_model/versions/$VERSION/gates?stage=$STAGE")
[ "$status" = 200 ] || refused "$status"
echo "gates for $STAGE:"
json '"\n".join("  %s: %s - %s" % (g["name"], "pass" if g["passed"] else "FAIL", g["detail"]) for g in d["gates"])'

payload=$(python3 -c 'import json, sys; print(json.dumps({"stage": sys.argv[1], "reason": sys.argv[2]}))' "$STAGE" "$REASON")
status=$(call POST "/models/$path_model/versions/$VERSION/promote" \
    --header "Content-Type: application/json" --data "$payload")
case $status in
    200)
        echo "promoted $MODEL@$VERSION to $STAGE"
        exit 0 ;;
    409)
        echo "promotion of $MODEL@$VERSION to $STAGE refused: $(json 'd["detail"]')" >&2
        exit 1 ;;
    *) refused "$status" ;;
esac
