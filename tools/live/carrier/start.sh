#!/bin/sh
# Start the carrier FreeSWITCH (ESL 127.0.0.1:8022 password "carrier", SIP 127.0.0.1:5090, RTP 30000-30999)
# from a FreeSWITCH install made by the real-switch build script, and make the far-end WAVs:
#   tools/live/carrier/start.sh PREFIX        e.g. /opt/fs
# Stop it with: kill "$(cat /tmp/vb-carrier/run/freeswitch.pid)"
# (The reference kit's start.sh passes PREFIX/mod; that build puts the modules in PREFIX/lib/freeswitch/mod.)
set -eu
prefix=$1
here=$(cd "$(dirname "$0")" && pwd)
run=/tmp/vb-carrier
mkdir -p $run/conf $run/log $run/db $run/run $run/audio $run/rec
cp "$here/freeswitch.xml" $run/conf/freeswitch.xml
# The far end's words: espeak-ng, 8 kHz 16-bit mono (what a G.711 leg carries).
say() { espeak-ng -v en-us -s 150 -w $run/audio/$1.22k.wav "$2" && sox $run/audio/$1.22k.wav -r 8000 -b 16 -c 1 $run/audio/$1.wav && rm $run/audio/$1.22k.wav; }
say hello "Hello?"
say answer "Yes, I will be there tomorrow at ten."
say voicemail "Hi, you have reached the Miller family. We can't take your call right now. Please leave a message after the tone."
"$prefix/bin/freeswitch" -nc -nonat -nonatmap -conf $run/conf -log $run/log -db $run/db -run $run/run \
  -mod "$prefix/lib/freeswitch/mod" -cfgname freeswitch.xml
for _ in $(seq 1 40); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', 8022), 1)" 2>/dev/null; then
    echo "carrier up (pid $(cat $run/run/freeswitch.pid))"; exit 0
  fi
  sleep 0.5
done
echo "carrier did not come up; see $run/log/freeswitch.log"; exit 1
