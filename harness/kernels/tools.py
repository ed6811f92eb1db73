"""The host programs a VM target needs, and why one cannot boot when one is missing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static",
         "depmod": "kmod", "modprobe": "kmod"}


def vng_path() -> str | None:
    beside = Path(sys.executable).parent / "vng"
    return str(beside) if beside.exists() else shutil.which("vng")


def missing_tools() -> str:
    """Why no guest can boot here ("" when one can)."""
    if vng_path() is None:
        return "virtme-ng is not installed (RFCDRILL_VM=1 bash ci/setup.sh installs it)"
    lacking = sorted({package for tool, package in TOOLS.items()
                      if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
                      and not Path("/sbin", tool).exists()})
    if lacking:
        return (f"Debian package(s) {', '.join(lacking)} missing (RFCDRILL_VM=1 bash ci/setup.sh "
                "installs them)")
    return ""
