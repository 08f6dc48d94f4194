#!/bin/sh
# Build-time proof that the image's configuration loads in the FreeSWITCH it was built with:
# starts FreeSWITCH through the image's entrypoint with a throwaway ESL password, waits for the
# event socket, requires every module modules.conf.xml loads and the external profile RUNNING,
# then stops it and removes what it wrote (the throwaway password in $HOME/.fs_cli_conf and the
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

fail() { echo "smoke: $*" >&2; exit 1; }

"$SMOKE_ENTRYPOINT" "$@" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$HOME/.fs_cli_conf" "$FREESWITCH_PRIVATE_DIR/freeswitch.xml.fsxml"
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
fs_cli -x 'sofia status profile external' | grep -q RUNNING || fail "profile external is not RUNNING"
fs_cli -x 'fsctl shutdown' >/dev/null 2>&1 || true
echo "smoke: $(echo "$modules" | wc -w) modules loaded, profile external RUNNING"
