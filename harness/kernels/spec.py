"""What `--target kernel@...` names, and whose expectations a guest kernel's results take.

`kernel@VERSION` is a Debian kernel (`6.1`: the newest 6.1.x; `6.12.95`: that release);
`kernel@PATH` (anything with a `/`) is a kernel image of one's own: a file (a bzImage, whose
modules virtme-ng looks for in `<image>/../../lib/modules/<release>`, the layout of an
unpacked package or of `make install INSTALL_PATH=<tree>/boot` with `modules_install
INSTALL_MOD_PATH=<tree>`), or such a tree with one `boot/vmlinuz-*`.

Expectations: a guest kernel whose release is MAJOR.MINOR.x reads `expectations/kernel@MAJOR.
MINOR.yaml` first, then `expectations/kernel.yaml` (harness.expectations.files_for): an entry
in the versioned file replaces the general one for that kernel series, and `outcome: pass`
there says the general entry does not hold for it.
"""

from __future__ import annotations

import re

PREFIX = "kernel@"


def is_vm_target(name: str) -> bool:
    return name.startswith(PREFIX)


def is_path(request: str) -> bool:
    return "/" in request


def series(release: str) -> str:
    """MAJOR.MINOR of a release or version (`6.1.0-57-amd64` -> `6.1`), else ""."""
    found = re.match(r"(\d+)\.(\d+)", release)
    return f"{found.group(1)}.{found.group(2)}" if found else ""


def expectations_name(release: str) -> str:
    """The expectations a kernel of this release reads (falling back to kernel's)."""
    return PREFIX + series(release) if series(release) else "kernel"
