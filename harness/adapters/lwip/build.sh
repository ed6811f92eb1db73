#!/usr/bin/env bash
# Builds the lwIP adapter once per version of its sources into a cache and prints the
# binary's path. Exits non-zero with one line naming what to install when gcc or
# Debian's liblwip-dev is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v gcc >/dev/null || { echo "lwip adapter: gcc is missing (apt-get install build-essential)" >&2; exit 1; }
if [ ! -f /usr/include/lwip/lwip/sockets.h ] || [ "$(gcc -print-file-name=liblwip.so)" = liblwip.so ]; then
  echo "lwip adapter: lwIP's headers or library are missing (apt-get install liblwip-dev)" >&2
  exit 1
fi
hash="$(cat "$here"/*.c "$here"/*.h "$here"/build.sh | sha256sum | cut -c1-16)"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/rfcdrill/adapters/lwip-$hash"
bin="$dir/lwip-adapter"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  tmp="$(mktemp "$dir/.build.XXXXXX")"
  gcc -std=gnu11 -O2 -g -Wall -Wextra -I/usr/include/lwip -o "$tmp" "$here"/*.c -llwip -lpthread -ldl >&2
  mv "$tmp" "$bin" # atomic: parallel builds never see a half-written binary
fi
echo "$bin"
