#!/bin/sh
# Build-time proof that the image's configuration loads in the FreeSWITCH it was built with:
# starts FreeSWITCH through the image's entrypoint with a throwaway ESL password, waits for the
# event socket, requires every module modules.conf.xml loads, the external profile RUNNING and no
# [ERR], [CRIT] or [ALERT] line logged while starting (console output and the log file
# logfile.conf.xml names), then stops it and removes what it wrote (the throwaway password in $HOME/.fs_cli_conf and the
# expanded freeswitch.xml.fsxml). A broken tree fails `docker build`, not the first deployment.
#
#   smoke.sh COMMAND...     (the image's CMD: freeswitch -nc -conf ... -log ...)
set -eu

: "${SMOKE_TIMEOUT:=90}"
: "${SMOKE_ENTRYPOINT:=docker-entrypoint.sh}"
: "${FREESWITCH_CONF:=/etc/freeswitch}"
: "${FREESWITCH_PRIVATE_DIR:=/var/lib/freeswitch/private}"
: "${FREESWITCH_SIP_IP:=127.0.0.1}"
FREESWITCH_ESL_PASSWORD="smoke$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export FREESWITCH_ESL_PASSWORD FREESWITCH_SIP_IP FREESWITCH_CONF

console=""
fail() {
  # what FreeSWITCH printed says why; the build log shows it
  [ -n "$console" ] && [ -s "$console" ] && tail -n 40 "$console" >&2
  echo "smoke: $*" >&2; exit 1
}

# The log file mod_logfile writes (logfile.conf.xml's "logfile" param); only what this start adds is read.
: "${SMOKE_LOGFILE:=$(sed -n 's/.*<param name="logfile" value="\([^"]*\)".*/\1/p' \
    "$FREESWITCH_CONF/autoload_configs/logfile.conf.xml" | head -n 1)}"
log_start=0
[ -n "$SMOKE_LOGFILE" ] && [ -f "$SMOKE_LOGFILE" ] && log_start=$(wc -c < "$SMOKE_LOGFILE")
console=$(mktemp)

"$SMOKE_ENTRYPOINT" "$@" > "$console" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$HOME/.fs_cli_conf" "$FREESWITCH_PRIVATE_DIR/freeswitch.xml.fsxml" "$console"
}
trap cleanup EXIT

waited=0
until fs_cli -x status >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || fail "FreeSWITCH exited while loading $FREESWITCH_CONF"
  waited=$((waited + 1))
  [ "$waited" -lt "$SMOKE_TIMEOUT" ] || fail "the event socket did not answer within ${SMOKE_TIMEOUT}s"
  sleep 1
done

modules=$(sed -e 's/<!--.*-->//' "$FREESWITCH_CONF/autoload_configs/modules.conf.xml" \
          | sed -n 's/.*<load module="\([A-Za-z0-9_]*\)".*/\1/p')
[ -n "$modules" ] || fail "no <load module=...> in modules.conf.xml"
for module in $modules; do
  [ "$(fs_cli -x "module_exists $module")" = "true" ] || fail "$module did not load"
done
# The external profile's row of `sofia status` (`sofia status profile external` prints the profile's
# settings, with no RUNNING anywhere, on FreeSWITCH 1.10.12). The image's HEALTHCHECK runs the same test.
fs_cli -x 'sofia status' | grep -Eq '^ *external[[:space:]]+profile[[:space:]].*RUNNING' || fail "profile external is not RUNNING"
# A configuration FreeSWITCH complains about still starts (e.g. "[ERR] mod_opus.c:1047 Opening of opus.conf
# failed"): any error logged while starting fails the build, with the lines that say what.
errors=$( { cat "$console"; [ -n "$SMOKE_LOGFILE" ] && [ -f "$SMOKE_LOGFILE" ] && tail -c "+$((log_start + 1))" \
          "$SMOKE_LOGFILE"; } | grep -E '\[(ERR|CRIT|ALERT)\]' || true)
[ -z "$errors" ] || fail "FreeSWITCH logged errors while starting:
$errors"
fs_cli -x 'fsctl shutdown' >/dev/null 2>&1 || true
echo "smoke: $(echo "$modules" | wc -w) modules loaded, profile external RUNNING, no error logged"
