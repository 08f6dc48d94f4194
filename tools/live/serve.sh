#!/bin/sh
# Run VoxBridge against the live switch of start_switch.sh (ESL 127.0.0.1:8021, gateway "carrier"), SQLite in DIR:
#   tools/live/serve.sh DIR            prints the API key of a fresh organization into DIR/key, logs in DIR/app.log
# API 127.0.0.1:18080, outbound socket 127.0.0.1:8084 (the shipped dialplan's default), audio WS 127.0.0.1:8085.
set -eu
dir=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mkdir -p "$dir"
export DATABASE_URL="sqlite:///$dir/vb.db" API_HOST=127.0.0.1 API_PORT=18080
export FREESWITCH_ESL_HOST=127.0.0.1:8021 FREESWITCH_ESL_PASSWORD=${FREESWITCH_ESL_PASSWORD:-voxbridge-live-esl}
export OUTBOUND_GATEWAY=${OUTBOUND_GATEWAY-carrier} VOXBRIDGE_SOCKET_ADDRESS=127.0.0.1:8084
export AUDIO_WS_LISTEN=127.0.0.1:8085 AUDIO_WS_PUBLIC_URL=ws://127.0.0.1:8085
export MEDIA_TOKEN_SECRET=live-run-media-token-secret-0123456789
export SIP_SECRET_KEY=${SIP_SECRET_KEY:-$(.venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')}
export LOG_LEVEL=${LOG_LEVEL:-INFO}
export INBOUND_SIP_HEADERS=${INBOUND_SIP_HEADERS-X-Customer-Id}
.venv/bin/python app.py migrate >/dev/null
.venv/bin/python app.py create-org "Live $(date +%s)" --minutes 1000 --caller-id +14155550000 > "$dir/org.txt"
grep -o 'vb_live_[A-Za-z0-9_-]*' "$dir/org.txt" | head -n 1 > "$dir/key"
exec .venv/bin/python app.py serve > "$dir/app.log" 2>&1
