#!/bin/sh
# Builds mod_audio_fork (jambonz/freeswitch-modules) out of the FreeSWITCH tree, against the
# installed FreeSWITCH (pkg-config freeswitch), with what the module's own Makefile.am names:
#   mod_audio_fork_la_SOURCES   the files to compile
#   mod_audio_fork_la_CFLAGS / _CXXFLAGS   its flags ($(AM_CFLAGS)/$(AM_CXXFLAGS) = pkg-config here)
#   the USE_SSE2 branch of its SIMD choice (the x86-64 baseline; USE_AVX2 needs a newer CPU)
#   mod_audio_fork_la_LDFLAGS   its libraries (libtool-only flags dropped, pkg-config done here)
# then checks with `ldd -r` that every symbol of the module resolves.
#
#   mod_audio_fork.sh [--print] [MODULE_DIR]     --print: show the commands, run nothing
set -eu

run=""
if [ "${1:-}" = "--print" ]; then run="echo"; shift; fi
cd "${1:-.}"

# Makefile.am with its backslash continuations joined, one variable per line.
am=$(sed -e ':a' -e '/\\$/N' -e 's/\\\n/ /' -e 'ta' Makefile.am)
# value of "mod_audio_fork_la_<NAME> = ..." (plain assignment only), AM_* references removed
am_var() {
  printf '%s\n' "$am" | sed -n "s/^mod_audio_fork_la_$1 *= *//p" | sed 's/\$(AM_C[A-Z]*FLAGS)//g'
}

sources=$(am_var SOURCES)
cflags=$(am_var CFLAGS)
simd=$(printf '%s\n' "$am" | sed -n 's/^ *mod_audio_fork_la_CXXFLAGS *+= *\(.*-DUSE_SSE2.*\)$/\1/p')
cxxflags="$(am_var CXXFLAGS) ${simd}"
libs=$(am_var LDFLAGS | sed -e 's/`pkg-config --libs libwebsockets`//' \
                            -e 's/-avoid-version//' -e 's/-module//' -e 's/-no-undefined//' -e 's/-shared//')
[ -n "$sources" ] || { echo "mod_audio_fork.sh: no mod_audio_fork_la_SOURCES in Makefile.am" >&2; exit 1; }

if [ -n "$run" ]; then
  pkg_cflags='$(pkg-config --cflags freeswitch libwebsockets)'
  pkg_libs='$(pkg-config --libs freeswitch libwebsockets)'
else
  pkg_cflags=$(pkg-config --cflags freeswitch libwebsockets)
  pkg_libs=$(pkg-config --libs freeswitch libwebsockets)
fi

objects=""
for src in $sources; do
  obj="${src%.*}.o"
  case "$src" in
    *.c) $run gcc $pkg_cflags $cflags -fPIC -O2 -c "$src" -o "$obj" ;;
    *)   $run g++ $pkg_cflags $cxxflags -fPIC -O2 -c "$src" -o "$obj" ;;
  esac
  objects="$objects $obj"
done
$run g++ -shared -o mod_audio_fork.so $objects $pkg_libs $libs

# Every symbol must resolve (a source missing from the list shows up here, not at load time).
if [ -z "$run" ]; then
  LD_LIBRARY_PATH="$(pkg-config --variable=libdir freeswitch)" ldd -r mod_audio_fork.so > ldd.txt 2>&1
  cat ldd.txt
  if grep -E 'undefined symbol|not found' ldd.txt; then
    echo "mod_audio_fork.sh: unresolved symbols or libraries (above)" >&2
    exit 1
  fi
fi
