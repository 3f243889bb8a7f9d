#!/usr/bin/env bash
# The scripted demo `make up` runs: a climber starts a session through the API; the event
# goes to Kafka, the projector writes it to PostgreSQL, the analyzer asks a Python worker
# for a warm-up plan and appends the result, which the projector also records.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${CRUXLOG_LOCAL_DIR:-$ROOT/.local}
BIN=${CRUXLOG_BIN_DIR:-$ROOT/target/debug}
API=${CRUXLOG_API:-http://127.0.0.1:8080}
export CRUXLOG_AUTH__JWT_SECRET
CRUXLOG_AUTH__JWT_SECRET=$(cat "$DATA/jwt-secret")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "1. a climber gets an access token (minted by the operator CLI until login lands)"
TOKEN=$("$BIN/cruxlog-command-api" mint-token --ttl-seconds 900)
echo "token: ${TOKEN:0:24}..."

step "2. POST /v1/sessions: the command API appends SessionStarted to Kafka (acks=all)"
BODY='{"discipline":"boulder","indoor":true,"location_name":"Demo Gym","planned_minutes":120}'
echo "request: $BODY"
CREATED=$(curl -fsS -X POST "$API/v1/sessions" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d "$BODY")
echo "response: $CREATED"
SESSION=$(json 'd["session_id"]' <<<"$CREATED")
POSITION=$(json 'd["position"]' <<<"$CREATED")

step "3. GET /v1/sessions/$SESSION?after=<position>: read your write from PostgreSQL"
curl -fsS -G "$API/v1/sessions/$SESSION" --data-urlencode "after=$POSITION" \
  -H "authorization: Bearer $TOKEN" | python3 -m json.tool

step "4. the analyzer's result: a warm-up plan from the Python worker, projected back"
for _ in $(seq 1 300); do
  VIEW=$(curl -fsS "$API/v1/sessions/$SESSION" -H "authorization: Bearer $TOKEN")
  if [[ $(json 'len(d["warmups"])' <<<"$VIEW") -gt 0 ]]; then
    json '"\n".join("  %2d min  %s: %s" % (s["minutes"], s["name"], s["cue"]) for s in d["warmups"][0]["steps"])' <<<"$VIEW"
    json '"  total %d min, by analyzer %s" % (d["warmups"][0]["total_minutes"], d["warmups"][0]["analyzer"])' <<<"$VIEW"
    break
  fi
  sleep 0.2
done
[[ $(json 'len(d["warmups"])' <<<"$VIEW") -gt 0 ]] || { echo "no warm-up after 60 s; see $DATA/logs/analyzers.log"; exit 1; }

step "5. bad input is refused with problem+json, and nothing is appended"
curl -sS -X POST "$API/v1/sessions" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"discipline":"ice","indoor":"yes"}' | python3 -m json.tool

step "where to look"
cat <<EOT
  API                 $API/v1/sessions         (bearer token: $BIN/cruxlog-command-api mint-token)
  metrics and health  http://127.0.0.1:9180/metrics  :9181 (projectors)  :9182 (analyzers); /healthz /readyz
  logs                $DATA/logs/{command-api,projectors,analyzers}.log, Kafka in $DATA/kafka/logs
  read models         psql -h 127.0.0.1 -p 15432 -U postgres -c 'select * from read.sessions'
  Kafka topics        bash infra/local/stack.sh kafka-cli topics --list
  stop everything     make down
EOT
