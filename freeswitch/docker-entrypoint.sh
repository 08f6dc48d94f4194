#!/bin/sh
# Entry point of the FreeSWITCH image: checks the environment that vars.xml reads with
# env-set, fills in the defaults, then execs FreeSWITCH (as the image's non-root user).
#
# Why the checks: env-set copies a variable verbatim into the XML *before* it is parsed, so a
# value holding  " < > & $ {  }  or a newline could rewrite the configuration, and an unset
# one silently becomes "" (an empty ESL password, a profile bound to nothing).
set -eu

fail() { echo "docker-entrypoint: $*" >&2; exit 64; }

# value must be non-empty and made of characters that are inert in XML and in the preprocessor
check() {
  name=$1; value=$2; pattern=$3
  [ -n "$value" ] || fail "$name is required"
  printf '%s' "$value" | grep -Eq "^${pattern}\$" || fail "$name has characters outside ${pattern}"
}

: "${FREESWITCH_ESL_LISTEN_IP:=127.0.0.1}"
: "${FREESWITCH_ESL_ALLOW_CIDRS:=127.0.0.1/32}"
: "${VOXBRIDGE_SOCKET_ADDRESS:=127.0.0.1:8084}"
: "${FREESWITCH_SIP_IP:=$(hostname -i | cut -d' ' -f1)}"
: "${FREESWITCH_EXT_SIP_IP:=$FREESWITCH_SIP_IP}"
: "${FREESWITCH_EXT_RTP_IP:=$FREESWITCH_EXT_SIP_IP}"
: "${FREESWITCH_SIP_PORT:=5080}"
: "${FREESWITCH_SIP_TLS:=false}"
: "${FREESWITCH_SIP_TLS_PORT:=5081}"
: "${FREESWITCH_CARRIER_CIDRS:=192.0.2.255/32}"   # TEST-NET: nobody, until the operator says who
: "${FREESWITCH_PBX_CIDRS:=192.0.2.255/32}"
: "${FREESWITCH_PROXY_CIDRS:=192.0.2.255/32}"
: "${FREESWITCH_CONF:=/etc/freeswitch}"
: "${OUTBOUND_GATEWAY:=}"
: "${FREESWITCH_MAX_SESSIONS:=200}"
: "${FREESWITCH_SESSIONS_PER_SECOND:=30}"
: "${FREESWITCH_RTP_START_PORT:=16384}"
: "${FREESWITCH_RTP_END_PORT:=32768}"
: "${FREESWITCH_SOFTPHONE_PASSWORD:=}"
: "${HOME:=/var/lib/freeswitch}"

check FREESWITCH_ESL_PASSWORD "${FREESWITCH_ESL_PASSWORD:-}" '[A-Za-z0-9._~+=@#%^:/?!*-]{12,128}'
check FREESWITCH_ESL_LISTEN_IP "$FREESWITCH_ESL_LISTEN_IP" '[0-9.]{7,15}'
check FREESWITCH_ESL_ALLOW_CIDRS "$FREESWITCH_ESL_ALLOW_CIDRS" '[0-9./,]+'
check VOXBRIDGE_SOCKET_ADDRESS "$VOXBRIDGE_SOCKET_ADDRESS" '[A-Za-z0-9.-]+:[0-9]{1,5}'
for var in FREESWITCH_SIP_IP FREESWITCH_EXT_SIP_IP FREESWITCH_EXT_RTP_IP; do
  eval "value=\${$var}"
  check "$var" "$value" '[A-Za-z0-9.:-]+'
done
for var in FREESWITCH_SIP_PORT FREESWITCH_SIP_TLS_PORT FREESWITCH_MAX_SESSIONS FREESWITCH_SESSIONS_PER_SECOND \
           FREESWITCH_RTP_START_PORT FREESWITCH_RTP_END_PORT; do
  eval "value=\${$var}"
  check "$var" "$value" '[0-9]{1,6}'
done
check FREESWITCH_SIP_TLS "$FREESWITCH_SIP_TLS" '(true|false)'
check FREESWITCH_CARRIER_CIDRS "$FREESWITCH_CARRIER_CIDRS" '[0-9./,]+'
check FREESWITCH_PBX_CIDRS "$FREESWITCH_PBX_CIDRS" '[0-9./,]+'
check FREESWITCH_PROXY_CIDRS "$FREESWITCH_PROXY_CIDRS" '[0-9./,]+'
if [ -n "$OUTBOUND_GATEWAY" ]; then
  check OUTBOUND_GATEWAY "$OUTBOUND_GATEWAY" '[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}'
fi

# Optional softphone test profile (5060, Digest only) when a password is given.
if [ -n "$FREESWITCH_SOFTPHONE_PASSWORD" ]; then
  check FREESWITCH_SOFTPHONE_PASSWORD "$FREESWITCH_SOFTPHONE_PASSWORD" '[A-Za-z0-9._~+=@#%^:/?!*-]{12,128}'
  cp "$FREESWITCH_CONF/optional/internal.xml" "$FREESWITCH_CONF/sip_profiles/internal.xml"
  mkdir -p "$FREESWITCH_CONF/directory/test-users"
  cp "$FREESWITCH_CONF/optional/softphone-user.xml" "$FREESWITCH_CONF/directory/test-users/softphone.xml"
else
  rm -f "$FREESWITCH_CONF/sip_profiles/internal.xml" "$FREESWITCH_CONF/directory/test-users/softphone.xml"
fi

# fs_cli (the image's health check, an operator's `docker exec ... fs_cli`) reads the password from
# $HOME/.fs_cli_conf, so it never appears on a command line (ps, `docker inspect` of the check).
write_fs_cli_conf() {
  (umask 077 && printf '[default]\nhost => 127.0.0.1\nport => 8021\npassword => %s\n' "$FREESWITCH_ESL_PASSWORD" \
    > "$HOME/.fs_cli_conf")
}
write_fs_cli_conf

export FREESWITCH_ESL_PASSWORD FREESWITCH_ESL_LISTEN_IP FREESWITCH_ESL_ALLOW_CIDRS VOXBRIDGE_SOCKET_ADDRESS \
  FREESWITCH_SIP_IP FREESWITCH_EXT_SIP_IP FREESWITCH_EXT_RTP_IP FREESWITCH_SIP_PORT FREESWITCH_SIP_TLS \
  FREESWITCH_SIP_TLS_PORT FREESWITCH_CARRIER_CIDRS FREESWITCH_PBX_CIDRS FREESWITCH_PROXY_CIDRS OUTBOUND_GATEWAY FREESWITCH_MAX_SESSIONS \
  FREESWITCH_SESSIONS_PER_SECOND FREESWITCH_RTP_START_PORT FREESWITCH_RTP_END_PORT FREESWITCH_SOFTPHONE_PASSWORD
exec "$@"
