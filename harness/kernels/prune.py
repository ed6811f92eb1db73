"""Keep only what a guest needs of an unpacked kernel package: the image and a few modules.

A Debian image package unpacks to 114-400 MB, nearly all of it modules no guest loads. Kept:
what virtme-ng's initramfs loads to mount the host's root over 9p (its own list of module
aliases, read from virtme-ng so the two cannot drift apart), overlay (its read-write folders),
tun (the kernel target's device) and the TCP congestion-control modules (the guest uses the
host's algorithm), each with the modules it depends on; then depmod indexes the rest.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from harness.errors import CaseError
from harness.kernels import cache

WANTED = ("overlay", "tun")
CONGESTION_GLOB = "kernel/net/ipv4/tcp_*.ko*"
# Files of lib/modules/<release> that describe the kernel rather than one module.
INDEX_FILES = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
_INSMOD = re.compile(r"^insmod (\S+)", re.M)


def virtme_aliases() -> tuple[str, ...]:
    """The module aliases virtme-ng loads in every guest (empty when it is not installed)."""
    try:
        from virtme import virtmods
    except ImportError:
        return ()
    return tuple(virtmods.MODALIASES)


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/sbin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise CaseError(None, f"{name} is not installed (Debian package kmod; ci/setup.sh with "
                    "RFCDRILL_VM=1 installs it)")


def depmod(tree: Path, release: str) -> None:
    done = subprocess.run([_tool("depmod"), "-a", "-b", str(tree), release],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise CaseError(None, f"depmod -b {tree} {release} failed: {done.stderr.strip()}")


def dependencies(tree: Path, release: str, names: tuple[str, ...]) -> set[Path]:
    """The module files `names` need, themselves included (built-in ones need none)."""
    found: set[Path] = set()
    for name in names:
        done = subprocess.run([_tool("modprobe"), "--show-depends", "-C", "/var/empty",
                               "-d", str(tree), "-S", release, "--", name],
                              capture_output=True, text=True)
        found.update(Path(p) for p in _INSMOD.findall(done.stdout))
    return found


def release_of(unpacked: Path) -> tuple[Path, str]:
    """The image and release (uname -r) of an unpacked image package."""
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise CaseError(None, f"{unpacked}: expected one boot/vmlinuz-*, found {len(images)}")
    return images[0], images[0].name.removeprefix("vmlinuz-")


def keep_needed(unpacked: Path, into: Path) -> tuple[Path, str]:
    """Move the image and the needed modules from `unpacked` to `into`; return the kept image
    and the release."""
    image, release = release_of(unpacked)
    # Packages built for a merged /usr (trixie on) keep their modules under usr/lib.
    src_mods = next((d for d in (unpacked / "lib" / "modules" / release,
                                 unpacked / "usr" / "lib" / "modules" / release) if d.is_dir()),
                    unpacked / "lib" / "modules" / release)
    dst_mods = into / "lib" / "modules" / release
    dst_mods.mkdir(parents=True)
    (into / "boot").mkdir()
    kept_image = into / "boot" / image.name
    shutil.move(str(image), kept_image)
    if src_mods.is_dir():
        base = src_mods.parents[2]           # the tree that holds lib/modules/<release>
        depmod(base, release)
        modules = dependencies(base, release, virtme_aliases() + WANTED)
        for path in src_mods.glob(CONGESTION_GLOB):
            modules |= dependencies(base, release, (path.name.split(".")[0],))
        for path in modules:
            target = dst_mods / path.resolve().relative_to(src_mods.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)
        for name in INDEX_FILES:
            if (src_mods / name).exists():
                shutil.move(str(src_mods / name), dst_mods / name)
        depmod(into, release)
        _check_root_module(dst_mods)
    return kept_image, release


def _check_root_module(mods: Path) -> None:
    """A guest mounts the host's root over 9p: without 9p it would hang at boot, silently."""
    if not cache.has_root_module(mods):
        raise CaseError(None, f"{mods}: 9p is neither built in nor among the kept modules "
                        "(is virtme-ng installed? RFCDRILL_VM=1 bash ci/setup.sh)")
