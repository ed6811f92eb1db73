#!/usr/bin/env bash
# Build the gVisor adapter, once per version of its sources, and print the binary's path.
# The build is offline, in GOPATH mode, against Debian's golang-go and
# golang-gvisor-gvisor-dev; its output goes to stderr, stdout has only the path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gocode=/usr/share/gocode
missing=()
command -v go >/dev/null || missing+=(golang-go)
[ -d "$gocode/src/gvisor.dev/gvisor/pkg/tcpip/stack" ] || missing+=(golang-gvisor-gvisor-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "gvisor adapter: install the Debian packages ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 3
fi

# The cache key covers the adapter's sources, the Go toolchain and the gVisor package.
key="$(cd "$here" && { cat ./*.go ./*.s build.sh; go version;
  dpkg-query -W -f='${Version}' golang-gvisor-gvisor-dev 2>/dev/null || true; } | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/rfcdrill/adapters/gvisor-$key"
bin="$cache/rfcdrill-gvisor"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$here" && GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$cache/gopath:$gocode" \
    GOCACHE="$cache/gocache" go build -trimpath -o "$work/rfcdrill-gvisor" .) >&2
  mv -f "$work/rfcdrill-gvisor" "$bin"   # atomic: a parallel build finds a whole binary or none
fi
echo "$bin"
