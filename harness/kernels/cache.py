"""Where fetched kernels are kept, and what a kept kernel is.

The cache is `$RFCDRILL_KERNEL_CACHE`, else `$XDG_CACHE_HOME/rfcdrill/kernels`, else
`~/.cache/rfcdrill/kernels`. It holds `apt/` (the private APT configuration, package lists
and downloaded .debs: harness.kernels.debian) and one folder per kernel package,
`<package>_<version>/`, with `boot/vmlinuz-<release>`, the pruned `lib/modules/<release>`
and `kernel.json`, the manifest written last (a folder without it is an interrupted unpack
and is made again).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "kernel.json"


def cache_root() -> Path:
    if os.environ.get("RFCDRILL_KERNEL_CACHE"):
        return Path(os.environ["RFCDRILL_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rfcdrill" / "kernels"


@dataclass(frozen=True)
class Kernel:
    """A kernel ready to boot: its image, and the tree virtme-ng finds modules in
    (`<tree>/lib/modules/<release>`, or none)."""

    image: str
    release: str = ""            # uname -r, when known before boot
    upstream: str = ""           # 6.1.192
    package: str = ""            # linux-image-6.1.0-57-amd64 (empty for kernel@PATH)
    version: str = ""            # the package's Debian version, 6.1.192-3
    suite: str = ""              # where apt found it
    deb_bytes: int = 0
    download_s: float = 0.0
    unpack_s: float = 0.0

    def describe(self) -> str:
        if self.package:
            return f"{self.package} {self.version} ({self.suite})"
        return self.image


def folder(package: str, version: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"{package}_{version.replace(':', '%3a')}"


def has_root_module(mods: Path) -> bool:
    """Whether a kernel with the modules folder `mods` can mount the host's root over 9p
    (built in, or among the modules)."""
    builtin = (mods / "modules.builtin").read_text() if (mods / "modules.builtin").exists() else ""
    return "fs/9p/9p.ko" in builtin or any(mods.rglob("9p.ko*"))


def load(path: Path) -> Kernel | None:
    """The kernel kept in `path`, or None when it is not (completely) there. A kept tree
    with modules but not 9p (pruned by an older rfcdrill, which kept too little) cannot
    boot, so it is not a kept kernel: it is fetched again."""
    try:
        data = json.loads((path / MANIFEST).read_text())
        kernel = Kernel(**data)
    except (OSError, ValueError, TypeError):
        return None
    mods = path / "lib" / "modules" / kernel.release
    if kernel.release and mods.is_dir() and not has_root_module(mods):
        return None
    return kernel if Path(kernel.image).is_file() else None


def save(path: Path, kernel: Kernel) -> None:
    (path / MANIFEST).write_text(json.dumps(asdict(kernel), indent=1))


def kept(root: Path | None = None) -> list[Kernel]:
    """Every complete kernel in the cache."""
    base = root or cache_root()
    if not base.is_dir():
        return []
    return [k for p in sorted(base.iterdir()) if p.is_dir() and (k := load(p)) is not None]
