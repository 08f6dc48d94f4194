# Environment of a live run (sourced): the project's entrypoint variables on loopback ports that do not
# collide with the carrier (tools/live/carrier: ESL 8022, SIP 5090, RTP 30000-30999).
export FREESWITCH_ESL_PASSWORD=${FREESWITCH_ESL_PASSWORD:-voxbridge-live-esl}
export FREESWITCH_ESL_LISTEN_IP=127.0.0.1 FREESWITCH_ESL_ALLOW_CIDRS=127.0.0.1/32
export FREESWITCH_SIP_IP=127.0.0.1 FREESWITCH_SIP_PORT=${FREESWITCH_SIP_PORT:-35090}
export FREESWITCH_RTP_START_PORT=42000 FREESWITCH_RTP_END_PORT=42999
# the carrier may call in without Digest auth (inbound calls), like a real carrier's address
export FREESWITCH_CARRIER_CIDRS=127.0.0.1/32
export VOXBRIDGE_SOCKET_ADDRESS=${VOXBRIDGE_SOCKET_ADDRESS:-127.0.0.1:8084}
# the switch's default trunk (vars.xml vb_default_gateway): where the default route (loopback into
# voxbridge_outbound) bridges a call that names no gateway; the gateway file render_conf.sh adds
export OUTBOUND_GATEWAY=${OUTBOUND_GATEWAY-carrier}
