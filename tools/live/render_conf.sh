#!/bin/sh
# Render the project's shipped FreeSWITCH configuration into DIR for a live run on a FreeSWITCH
# built with the real-switch build script (prefix layout: bin/, lib/freeswitch/mod/):
#   tools/live/render_conf.sh DIR [GATEWAY_NAME GATEWAY_PROXY]
# DIR/conf is freeswitch/ with dialplan/ copied in (the symlink dereferenced, as the image does);
# logfile.conf.xml writes DIR/log/freeswitch.log instead of /var/log/freeswitch. With a gateway
# name and proxy (host:port), DIR/conf/sip_profiles/external/NAME.xml points a gateway at it (the
# carrier of tools/live/carrier/), as the operator's OUTBOUND_GATEWAY would be.
# Nothing else is changed: what runs is the configuration the image ships.
set -eu
dir=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$dir/conf"
mkdir -p "$dir/log" "$dir/db" "$dir/run" "$dir/storage" "$dir/recordings" "$dir/home"
cp -rL "$root/freeswitch" "$dir/conf"
rm -rf "$dir/conf/Dockerfile" "$dir/conf/docker-entrypoint.sh" "$dir/conf/build"
sed -i "s|/var/log/freeswitch/freeswitch.log|$dir/log/freeswitch.log|" "$dir/conf/autoload_configs/logfile.conf.xml"
if [ $# -ge 3 ]; then
  cat > "$dir/conf/sip_profiles/external/$2.xml" <<XML
<include>
  <gateway name="$2">
    <param name="proxy" value="$3"/>
    <param name="username" value="voxbridge"/>
    <param name="password" value="unused"/>
    <param name="register" value="false"/>
    <param name="caller-id-in-from" value="true"/>
  </gateway>
</include>
XML
fi
echo "$dir/conf"
