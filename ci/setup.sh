#!/usr/bin/env bash
# Set up everything rfcdrill needs on a fresh Debian machine, as root. Idempotent: a
# second run installs nothing. Sourced by ci/suite.sh and ci/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RFCDRILL_VENV:-$root/.venv}"

need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
command -v gcc >/dev/null || need_apt+=(build-essential)
[ -f /usr/include/lwip/lwip/sockets.h ] || need_apt+=(liblwip-dev) # the lwip target's adapter
# The gVisor adapter (harness/adapters/gvisor) builds offline from Debian's Go and gVisor sources.
command -v go >/dev/null || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/gvisor.dev/gvisor/pkg/tcpip ] || need_apt+=(golang-gvisor-gvisor-dev)
if [ "${RFCDRILL_NO_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
# Other kernels in VMs (--target kernel@VERSION) with RFCDRILL_VM=1: QEMU, virtme-ng's
# initramfs tools, and apt-get/dpkg-deb (present on Debian) for the kernel packages.
extras=test
if [ "${RFCDRILL_VM:-0}" = 1 ]; then
  extras=test,vm
  command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
  command -v busybox >/dev/null || need_apt+=(busybox-static)
  [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || need_apt+=(kmod)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need_apt[*]} (Debian packages)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; run as root to install them" >&2
  fi
fi

stamp="$venv/.rfcdrill-installed"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$extras" = test,vm ] && [ ! -x "$venv/bin/vng" ]; then rm -f "$stamp"; fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "setup: installing rfcdrill and its dependencies into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$root[$extras]" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$venv/bin/python" -c "import harness, stack, pytun, scapy, yaml, jsonschema, xdist, hypothesis"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
