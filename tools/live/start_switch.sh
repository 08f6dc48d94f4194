#!/bin/sh
# Start a real FreeSWITCH on the project's shipped configuration (rendered by render_conf.sh into DIR),
# through the image's own entrypoint, in the background:
#   tools/live/start_switch.sh PREFIX DIR       e.g. /opt/fs /tmp/vb-live
# ESL 127.0.0.1:8021 (password: FREESWITCH_ESL_PASSWORD of env.sh), SIP 127.0.0.1:35090.
# Stop it with: kill "$(cat DIR/run/freeswitch.pid)"
set -eu
prefix=$1; dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tools/live/env.sh"
export HOME="$dir/home"
"$root/freeswitch/docker-entrypoint.sh" "$prefix/bin/freeswitch" -nonat -nf -nc -conf "$dir/conf" -log "$dir/log" \
  -db "$dir/db" -run "$dir/run" -storage "$dir/storage" -recordings "$dir/recordings" \
  -mod "$prefix/lib/freeswitch/mod" > "$dir/console.log" 2>&1 &
for _ in $(seq 1 60); do
  if PATH="$prefix/bin:$PATH" fs_cli -x status >/dev/null 2>&1; then echo "switch up (pid $!)"; exit 0; fi
  sleep 0.5
done
echo "switch did not come up; see $dir/console.log and $dir/log/freeswitch.log" >&2; exit 1
