#!/usr/bin/env bash
# Fuzzes the REST API with schemathesis against its own OpenAPI document.
#
# Starts the real binary on a free port with a fresh data dir, registers two
# users, creates a chat with a message (so ids exist), then runs schemathesis
# authenticated as the first user. Fails on any 5xx and on any response whose
# status code, content type or body the document does not allow.
#
#   NATTER_BIN=target/debug/natter   the binary to test (not built here)
#   FUZZ_EXAMPLES=50                 examples per operation and phase
#   FUZZ_SEED=<n>                    reproduce a run
#
# schemathesis is installed once into tests/fuzz/.venv (gitignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${NATTER_BIN:-$root/target/debug/natter}"
examples="${FUZZ_EXAMPLES:-50}"
schemathesis_version="4.32.5"
venv="$here/.venv"

if [[ ! -x "$bin" ]]; then
    echo "fuzz: $bin not found; run cargo build first" >&2
    exit 2
fi

# --- schemathesis, pinned, in a virtualenv -----------------------------------
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
    python="$(command -v python3.11 || command -v python3)"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$schemathesis_version"
fi

# --- a live server -------------------------------------------------------------
data="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

"$bin" serve --port 0 --data-dir "$data/natter" 2>"$data/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$data/server.log" | head -1 | sed 's/listening on //' || true)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "fuzz: the server exited:" >&2
        cat "$data/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$url" ]]; then
    echo "fuzz: the server did not report its port" >&2
    exit 1
fi

# --- fixtures: two users, a chat, a message ------------------------------------
json() { "$venv/bin/python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { # path token body
    curl -sS --fail-with-body -X POST "$url$1" -H 'Content-Type: application/json' \
        ${2:+-H "Authorization: Bearer $2"} -d "$3"
}
alice="$(post /auth/register "" '{"email":"alice@fuzz.test","password":"fuzz-password-1","name":"Alice"}')"
bob="$(post /auth/register "" '{"email":"bob@fuzz.test","password":"fuzz-password-2","name":"Bob"}')"
token="$(json "['token']" <<<"$alice")"
bob_id="$(json "['user']['id']" <<<"$bob")"
chat="$(post /chat "$token" "{\"participantIds\":[$bob_id],\"isGroup\":false}")"
chat_id="$(json "['id']" <<<"$chat")"
group="$(post /chat "$token" "{\"participantIds\":[$bob_id],\"isGroup\":true,\"name\":\"Fuzzers\"}")"
group_id="$(json "['id']" <<<"$group")"
post "/chat/$chat_id/messages" "$token" '{"messageType":"TEXT","content":"hello"}' >/dev/null
message="$(post "/chat/$group_id/messages" "$token" '{"messageType":"TEXT","content":"hello group"}')"
message_id="$(json "['id']" <<<"$message")"
printf 'fuzz' >"$data/file.txt"
upload="$(curl -sS --fail-with-body -X POST "$url/chat/upload" \
    -H "Authorization: Bearer $token" -F "file=@$data/file.txt")"
file_name="$(json "['fileUrl'].rsplit('/', 1)[1]" <<<"$upload")"
echo "fuzz: server at $url, chats $chat_id and $group_id, message $message_id, file $file_name"

# Path parameters that exist, so operations get past 404 (the coverage phase
# still tries invalid ones). userId is Bob: removing him is a valid outcome,
# while the caller leaving would turn the rest of the run into 404s.
cat >"$data/schemathesis.toml" <<TOML
[parameters]
"path.id" = $group_id
"path.messageId" = $message_id
"path.userId" = $bob_id
"path.name" = "$file_name"
TOML

# --- the run --------------------------------------------------------------------
# /ws is left out: an HTTP client cannot do the upgrade (tests/api/realtime.rs
# covers it). The stateful phase follows links the document does not declare.
started=$SECONDS
set +e
# From the temp dir: schemathesis keeps a crash cache in ./.schemathesis.
cd "$data"
# One worker: hypothesis's lambda descriptions are not thread-safe on 3.11.
"$venv/bin/schemathesis" --config-file "$data/schemathesis.toml" run "$url/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" \
    --phases examples,coverage,fuzzing \
    --exclude-path /ws \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --suppress-health-check all \
    --no-color \
    ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
    --report junit --report-junit-path "$data/junit.xml" \
    "$@"
status=$?
set -e

# One line per run: operations with and without failures.
read -r passed failed < <("$venv/bin/python" - "$data/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
except (OSError, ET.ParseError):
    cases = []
ok = bad = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        bad += 1
    elif case.find("skipped") is None:
        ok += 1
print(ok, bad)
EOF
)
if grep -q 'panicked\|internal error' "$data/server.log"; then
    echo "fuzz: the server logged internal errors:" >&2
    grep -B2 -A5 'panicked\|internal error' "$data/server.log" | head -40 >&2
    status=1
fi
echo "fuzz: $passed passed, $failed failed ($((SECONDS - started)) s, $examples examples per operation)"
exit "$status"
