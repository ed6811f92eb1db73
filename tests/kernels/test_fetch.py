"""Finding, fetching and keeping Debian kernels, without the network (harness.kernels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import CaseError
from harness.kernels import cache, debian, prune
from harness.kernels.debian import Candidate

CANDIDATES = [
    Candidate("linux-image-6.1.0-56-amd64", "6.1.190-1", "bookworm"),
    Candidate("linux-image-6.1.0-57-amd64", "6.1.192-3", "bookworm-security"),
    Candidate("linux-image-6.12.95+deb12-amd64", "6.12.95-1~bpo12+1", "bookworm-backports"),
    Candidate("linux-image-6.12.95+deb13-amd64", "6.12.95-1", "trixie-security"),
    Candidate("linux-image-6.12.9+deb13-amd64", "6.12.9-1", "trixie"),
    Candidate("linux-image-5.10.0-32-amd64", "5.10.223-1", "bullseye"),
]


def test_a_series_takes_its_newest_release() -> None:
    assert debian.pick("6.1", CANDIDATES).version == "6.1.192-3"
    # 6.12.95 beats 6.12.9: releases compare as numbers, not text
    assert debian.pick("6.12", CANDIDATES).upstream == "6.12.95"


def test_a_release_takes_its_newest_debian_build() -> None:
    # 6.12.95-1 is later than the backport 6.12.95-1~bpo12+1 (dpkg's ordering)
    assert debian.pick("6.12.95", CANDIDATES).package == "linux-image-6.12.95+deb13-amd64"
    assert debian.pick("5.10.223", CANDIDATES).suite == "bullseye"


def test_an_unknown_version_lists_what_there_is() -> None:
    with pytest.raises(CaseError) as error:
        debian.pick("6.3", CANDIDATES)
    text = str(error.value)
    assert "no Debian kernel 6.3" in text
    assert "5.10 (newest 5.10.223), 6.1 (newest 6.1.192), 6.12 (newest 6.12.95)" in text
    with pytest.raises(CaseError, match="no Debian kernel 6.1.7"):
        debian.pick("6.1.7", CANDIDATES)        # 6.1.7 is not a prefix of 6.1.70 or 6.1.192


@pytest.mark.parametrize("name, generic", [
    ("linux-image-6.1.0-57-amd64", True), ("linux-image-6.12.95+deb12-amd64", True),
    ("linux-image-6.12.90+deb12.1-amd64", True), ("linux-image-6.1.0-57-cloud-amd64", False),
    ("linux-image-6.1.0-57-rt-amd64", False), ("linux-image-6.1.0-57-amd64-unsigned", False),
    ("linux-image-6.1.0-57-amd64-dbg", False), ("linux-image-amd64", False),
    ("linux-image-6.12-amd64", False)])
def test_only_the_generic_flavour_is_a_candidate(name: str, generic: bool) -> None:
    assert bool(debian.IMAGE_NAME.match(name)) is generic


def test_a_bad_request_is_one_line() -> None:
    with pytest.raises(CaseError, match="MAJOR.MINOR"):
        debian.fetch("six")


def _keep(root: Path, upstream: str) -> cache.Kernel:
    where = cache.folder("linux-image-x", upstream + "-1", root)
    (where / "boot").mkdir(parents=True)
    (where / "boot" / "vmlinuz-x").write_bytes(b"image")
    kernel = cache.Kernel(str(where / "boot" / "vmlinuz-x"), "x", upstream, "linux-image-x",
                          upstream + "-1", "bookworm")
    cache.save(where, kernel)
    return kernel


def test_a_kept_release_needs_no_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = _keep(tmp_path, "6.1.192")
    monkeypatch.setattr(debian.Apt, "update", lambda self, force=False: pytest.fail("apt used"))
    assert debian.fetch("6.1.192", tmp_path) == kernel


def test_a_series_asks_the_archive_then_uses_the_kept_copy(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = _keep(tmp_path, "6.1.192")
    monkeypatch.setattr(debian.Apt, "update", lambda self, force=False: None)
    monkeypatch.setattr(debian.Apt, "candidates",
                        lambda self: [Candidate("linux-image-x", "6.1.192-1", "bookworm")])
    monkeypatch.setattr(debian, "_fetch_new", lambda *a: pytest.fail("downloaded again"))
    assert debian.fetch("6.1", tmp_path) == kernel


def test_an_interrupted_unpack_is_not_a_kept_kernel(tmp_path: Path) -> None:
    kernel = _keep(tmp_path, "6.1.192")
    assert cache.kept(tmp_path) == [kernel]
    Path(kernel.image).unlink()
    assert cache.kept(tmp_path) == []
    (tmp_path / "other").mkdir()                       # no manifest at all
    assert cache.load(tmp_path / "other") is None


def test_a_kept_tree_without_9p_is_fetched_again(tmp_path: Path) -> None:
    """An older prune kept tun and overlay but not 9p: such a guest cannot mount the host's
    root and panics at boot (seen with 5.10), so the tree does not count as kept."""
    kernel = _keep(tmp_path, "5.10.262")
    mods = Path(kernel.image).parents[1] / "lib" / "modules" / kernel.release
    (mods / "kernel" / "drivers" / "net").mkdir(parents=True)
    (mods / "kernel" / "drivers" / "net" / "tun.ko").write_bytes(b"")
    (mods / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
    assert cache.kept(tmp_path) == []
    (mods / "kernel" / "fs" / "9p").mkdir(parents=True)
    (mods / "kernel" / "fs" / "9p" / "9p.ko").write_bytes(b"")
    assert cache.kept(tmp_path) == [kernel]
    (mods / "kernel" / "fs" / "9p" / "9p.ko").unlink()
    (mods / "modules.builtin").write_text("kernel/fs/9p/9p.ko\n")     # built in
    assert cache.kept(tmp_path) == [kernel]


def test_the_private_apt_configuration_stays_in_the_cache(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFCDRILL_DEBIAN_MIRROR", "http://mirror.example/debian/")
    apt = debian.Apt(tmp_path)
    apt.write()
    conf = apt.conf.read_text()
    for key in ("SourceList", "SourceParts", "Preferences", "PreferencesParts", "State",
                "State::status", "Cache"):
        line = next(l for l in conf.splitlines() if l.startswith(f"Dir::{key} ")
                    or l.startswith(f"Dir::Etc::{key} "))
        assert str(tmp_path) in line, line
    sources = (tmp_path / "apt" / "etc" / "sources.list").read_text().splitlines()
    assert len(sources) == len(debian.SUITES) + len(debian.SECURITY_SUITES)
    assert all(l.startswith(f"deb [signed-by={debian.KEYRING}] http://mirror.example/debian")
               for l in sources)
    assert "http://mirror.example/debian-security bookworm-security main" in "\n".join(sources)
    assert apt.lists_age() == float("inf")


def test_an_image_only_package_is_kept_whole(tmp_path: Path) -> None:
    unpacked = tmp_path / "tree"
    (unpacked / "boot").mkdir(parents=True)
    (unpacked / "boot" / "vmlinuz-6.1.0-57-amd64").write_bytes(b"image")
    image, release = prune.keep_needed(unpacked, tmp_path / "kept")
    assert release == "6.1.0-57-amd64"
    assert image.read_bytes() == b"image" and image.parent == tmp_path / "kept" / "boot"


def test_a_package_without_one_image_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    with pytest.raises(CaseError, match="expected one boot/vmlinuz"):
        prune.release_of(tmp_path)


def test_the_manifest_round_trips(tmp_path: Path) -> None:
    kernel = _keep(tmp_path, "6.12.95")
    data = json.loads((Path(kernel.image).parents[1] / cache.MANIFEST).read_text())
    assert data["upstream"] == "6.12.95" and cache.load(Path(kernel.image).parents[1]) == kernel
