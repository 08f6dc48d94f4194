#!/bin/sh
# Stop a FreeSWITCH started by start_switch.sh or carrier/start.sh, by its pid file, and wait until it exited:
#   tools/live/stop.sh /tmp/vb-live/run/freeswitch.pid      (the carrier: /tmp/vb-carrier/run/freeswitch.pid)
set -eu
pid=$(cat "$1" 2>/dev/null) || { echo "no pid file $1"; exit 0; }
kill "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 180); do
  # gone, or a zombie nobody reaps (start_switch.sh's shell has exited): either way it has stopped
  case "$(ps -o stat= -p "$pid" 2>/dev/null)" in ""|Z*) echo "stopped $pid"; exit 0 ;; esac
  sleep 0.5
done
echo "$pid still running after 90 s" >&2; exit 1
