#!/usr/bin/env bash
# The scripted demo `make up` runs: a climber registers, starts a session, logs an attempt and
# uploads a video of it through the API; the events go to Kafka, the projector writes them to
# PostgreSQL, the analyzers ask Python workers for a warm-up plan and a movement analysis
# (pose, metrics, errors and strengths, an annotated video), which come back the same way.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DATA=${CRUXLOG_LOCAL_DIR:-$ROOT/.local}
BIN=${CRUXLOG_BIN_DIR:-$ROOT/target/debug}
API=${CRUXLOG_API:-http://127.0.0.1:8080}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

step "1. a climber registers (Argon2id password, UserRegistered appended) and gets tokens"
EMAIL="climber-$(date +%s)@example.org"
REGISTERED=$(curl -fsS -X POST "$API/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"correct horse battery\",\"display_name\":\"Demo Climber\"}")
TOKEN=$(json 'd["access_token"]' <<<"$REGISTERED")
echo "user $(json 'd["user_id"]' <<<"$REGISTERED") ($EMAIL), role $(json 'd["role"]' <<<"$REGISTERED"), token ${TOKEN:0:24}..."

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

step "6. an attempt, then its video (generated here: a person climbing a textured wall, H.264)"
ATTEMPT=$(curl -fsS -X POST "$API/v1/sessions/$SESSION/attempts" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' \
  -d '{"style":"boulder","result":"redpoint","grade_system":"fontainebleau","grade":"6b+","falls":1}')
ATTEMPT_ID=$(json 'd["attempt_id"]' <<<"$ATTEMPT")
echo "attempt $ATTEMPT_ID, session now at version $(json 'd["version"]' <<<"$ATTEMPT")"
mkdir -p "$DATA/demo"
VIDEO=$DATA/demo/climb.mp4
"$DATA/venv/bin/cruxlog-vision" make-test-video --seconds 6 --width 1280 --height 720 "$VIDEO" >/dev/null
echo "video: $VIDEO ($(stat -c %s "$VIDEO") bytes)"
UPLOADED=$(curl -fsS -X POST "$API/v1/sessions/$SESSION/attempts/$ATTEMPT_ID/videos" \
  -H "authorization: Bearer $TOKEN" -H 'content-type: video/mp4' --data-binary "@$VIDEO")
echo "$UPLOADED" | python3 -m json.tool
ANALYSIS=$(json 'd["analysis_id"]' <<<"$UPLOADED")

step "7. the movement analysis: pose, metrics, errors and strengths (Python workers via Kafka)"
for _ in $(seq 1 600); do
  RESULT=$(curl -fsS "$API/v1/analyses/$ANALYSIS" -H "authorization: Bearer $TOKEN" || true)
  if [[ -n $RESULT && $(json 'd["status"]' <<<"$RESULT") != requested ]]; then break; fi
  sleep 0.5
done
[[ $(json 'd["status"]' <<<"$RESULT") == completed ]] || { echo "analysis not completed: $RESULT; see $DATA/logs/analyzers.log"; exit 1; }
json '"  analyzer %s v%s (%s)" % (d["analyzer"]["name"], d["analyzer"]["version"], d["analyzer"]["model_id"])' <<<"$RESULT"
json '"\n".join("  %-34s %10.3f" % (k, v) for k, v in sorted(d["metrics"].items()))' <<<"$RESULT"
json '"\n".join("  %-8s %-28s %5.1f-%4.1f s  %s" % (f["kind"], f["code"], f["start_ms"]/1000, f["end_ms"]/1000, f["explanation"]) for f in d["findings"]) or "  no findings"' <<<"$RESULT"
ANNOTATED=$DATA/demo/annotated.mp4
curl -fsS "$API/v1/analyses/$ANALYSIS/media/annotated_video" -H "authorization: Bearer $TOKEN" -o "$ANNOTATED"
curl -fsS "$API/v1/analyses/$ANALYSIS/media/summary_image" -H "authorization: Bearer $TOKEN" -o "$DATA/demo/summary.jpg"
echo "annotated video: $ANNOTATED ($(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height,pix_fmt -of csv=p=0 "$ANNOTATED"))"
echo "summary image:   $DATA/demo/summary.jpg"

step "where to look"
cat <<EOT
  API                 $API/docs (Swagger UI), $API/openapi.json; first admin: $BIN/cruxlog-command-api create-admin
  metrics and health  http://127.0.0.1:9180/metrics  :9181 (projectors)  :9182 (analyzers); /healthz /readyz
  logs                $DATA/logs/{command-api,projectors,analyzers}.log, Kafka in $DATA/kafka/logs
  read models         psql -h 127.0.0.1 -p 15432 -U postgres -c 'select * from read.sessions'
  Kafka topics        bash infra/local/stack.sh kafka-cli topics --list
  stop everything     make down
EOT
