#!/bin/sh
# Run two VoxBridge instances (separate processes, one PostgreSQL database) against the live switch of
# start_switch.sh, the way issue 13's scale-out runs them (docs/telephony.md, docs/live-runs.md section 8):
#   tools/live/serve_pair.sh DIR POSTGRES_ADMIN_URL      e.g. postgresql://postgres@127.0.0.1:5432/postgres
# Instance "b" starts first and so owns the node's events (calls/ownership.py); instance "a" holds the sockets
# and voice streams of every call: "b" tells the switch to reach a's socket (8084, the shipped dialplan's
# address) and a's audio server (8085), as a load balancer in front of both would. APIs: a 18080, b 18081.
# The organization's API key is DIR/key; logs DIR/a.log, DIR/b.log; pids DIR/a.pid, DIR/b.pid.
set -eu
dir=$1
admin=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p "$dir"
db=vb_live_pair
psql "$admin" -q -c "drop database if exists $db" -c "create database $db"
export DATABASE_URL="${admin%/*}/$db" API_HOST=127.0.0.1
export FREESWITCH_ESL_HOST=127.0.0.1:8021 FREESWITCH_ESL_PASSWORD=${FREESWITCH_ESL_PASSWORD:-voxbridge-live-esl}
export OUTBOUND_GATEWAY=${OUTBOUND_GATEWAY-carrier}
export VOXBRIDGE_SOCKET_PUBLIC_ADDRESS=127.0.0.1:8084 AUDIO_WS_PUBLIC_URL=ws://127.0.0.1:8085
export MEDIA_TOKEN_SECRET=live-run-media-token-secret-0123456789
export SIP_SECRET_KEY=${SIP_SECRET_KEY:-$(.venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')}
export LOG_LEVEL=${LOG_LEVEL:-INFO} INBOUND_SIP_HEADERS=${INBOUND_SIP_HEADERS-X-Customer-Id}
# run_pair.py counts the webhooks on 127.0.0.1:18099 (a private address: allowed for this run only).
export WEBHOOK_ALLOW_PRIVATE=true
.venv/bin/python app.py migrate >/dev/null
.venv/bin/python app.py create-org "Live pair $(date +%s)" --minutes 1000 --caller-id +14155550000 \
  --webhook-url http://127.0.0.1:18099/hook > "$dir/org.txt"
grep -o 'vb_live_[A-Za-z0-9_-]*' "$dir/org.txt" | head -n 1 > "$dir/key"
start() {  # NAME API_PORT SOCKET_PORT AUDIO_PORT WEB_CALL_PORT
  API_PORT=$2 VOXBRIDGE_SOCKET_ADDRESS=127.0.0.1:$3 AUDIO_WS_LISTEN=127.0.0.1:$4 WEB_CALL_LISTEN=127.0.0.1:$5 \
    .venv/bin/python app.py serve > "$dir/$1.log" 2>&1 &
  echo $! > "$dir/$1.pid"
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$2/health" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "instance $1 did not become ready; see $dir/$1.log"; exit 1
}
start b 18081 8094 8095 8096
start a 18080 8084 8085 8086
echo "a: pid $(cat "$dir/a.pid") API 18080; b: pid $(cat "$dir/b.pid") API 18081 (owns the node)"
