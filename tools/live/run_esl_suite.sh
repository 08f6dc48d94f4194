#!/bin/sh
# The project's live ESL suite (tests that honour FREESWITCH_ESL_HOST: tests/esl/test_live.py, tests/fssim's
# protocol-level tests, the conformance run) against the switch started by start_switch.sh, whose gateway
# "carrier" points at tools/live/carrier (answers any number; +1555000486x is a SIP 486).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export FREESWITCH_ESL_HOST=127.0.0.1:8021 FREESWITCH_ESL_PASSWORD=${FREESWITCH_ESL_PASSWORD:-voxbridge-live-esl}
export FREESWITCH_LIVE_ANSWER_DIAL=${FREESWITCH_LIVE_ANSWER_DIAL:-sofia/gateway/carrier/+14155559999}
export FREESWITCH_LIVE_BUSY_DIAL=${FREESWITCH_LIVE_BUSY_DIAL:-sofia/gateway/carrier/+15550004861}
# a loopback leg that answers, as the captures' call (the shipped configuration has no echo extension)
export FREESWITCH_LIVE_LOOPBACK_DIAL=${FREESWITCH_LIVE_LOOPBACK_DIAL:-[vb_country_code=1]loopback/+14155559999/voxbridge_outbound}
exec .venv/bin/python -m gevent.monkey --module pytest -q -p no:cacheprovider -rs --tb=short "$@" \
  tests/esl/test_live.py tests/fssim
