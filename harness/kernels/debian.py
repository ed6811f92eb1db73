"""Debian's kernel packages, found and fetched with a private APT configuration.

Nothing of the system's APT set-up changes: `<cache>/apt/apt.conf` (passed as APT_CONFIG)
names its own sources list, preferences, state (package lists, an empty dpkg status) and
archive folder, so `apt-get update` and `apt-get download` touch only the cache. The sources
carry `signed-by` Debian's archive keyring: apt checks the Release files' signatures at update
and each .deb's hash at download, and refuses what fails. The proxy settings of the system's
/etc/apt/apt.conf.d still apply.

A request is an upstream version: `6.1` (the newest 6.1.x), `6.1.192` (that release), and
the newest Debian build of it among the suites is taken.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CaseError
from harness.kernels import cache, prune

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Suites of the main archive, and of the security archive (the same mirror's debian-security).
SUITES = ("bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports")
SECURITY_SUITES = ("bullseye-security", "bookworm-security", "trixie-security")
LISTS_MAX_AGE = 24 * 3600.0        # package lists older than this are updated first
APT_LIMIT = 900.0                  # seconds an apt-get or dpkg-deb command may take
# Debian's generic x86-64 flavour; not -cloud- or -rt-, not -dbg or -unsigned.
IMAGE_NAME = re.compile(r"^linux-image-(\d+\.\d+[.\d]*)(?:-\d+|\+deb\d+(?:\.\d+)?)-amd64$")
REQUEST = re.compile(r"^\d+\.\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Candidate:
    package: str
    version: str          # Debian's version of the package
    suite: str

    @property
    def upstream(self) -> str:
        return self.version.split("-")[0].split("~")[0].split("+")[0]


def upstream_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def matches(request: str, upstream: str) -> bool:
    """`6.1` is any 6.1.x; `6.1.192` that release only."""
    return upstream == request or upstream.startswith(request + ".") and request.count(".") == 1


def mirror() -> str:
    """The Debian mirror: $RFCDRILL_DEBIAN_MIRROR, else the first .../debian of the system's
    sources (a local mirror or proxy keeps working), else deb.debian.org."""
    if os.environ.get("RFCDRILL_DEBIAN_MIRROR"):
        return os.environ["RFCDRILL_DEBIAN_MIRROR"].rstrip("/")
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = re.search(r"(?m)^\s*(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(\S+/debian)/?\s", text)
        if found:
            return found.group(1)
    return DEFAULT_MIRROR


class Apt:
    """The private APT configuration under `<cache>/apt`."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache.cache_root()) / "apt"

    @property
    def conf(self) -> Path:
        return self.root / "apt.conf"

    def sources(self) -> str:
        main = mirror()
        security = os.environ.get("RFCDRILL_DEBIAN_SECURITY_MIRROR",
                                  main.removesuffix("/debian") + "/debian-security")
        lines = [f"deb [signed-by={KEYRING}] {main} {suite} main" for suite in SUITES]
        lines += [f"deb [signed-by={KEYRING}] {security} {suite} main" for suite in SECURITY_SUITES]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        """The configuration files (rewritten each time: the mirror may have changed)."""
        for sub in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
                    "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        (self.root / "etc" / "sources.list").write_text(self.sources())
        r = self.root
        self.conf.write_text(
            f'Dir::Etc::SourceList "{r}/etc/sources.list";\n'
            f'Dir::Etc::SourceParts "{r}/etc/sources.list.d";\n'
            f'Dir::Etc::Preferences "{r}/etc/preferences";\n'
            f'Dir::Etc::PreferencesParts "{r}/etc/preferences.d";\n'
            f'Dir::State "{r}/state";\n'
            f'Dir::State::status "{r}/state/status";\n'
            f'Dir::Cache "{r}/cache";\n'
            'APT::Architecture "amd64";\nAPT::Architectures { "amd64"; };\n'
            'Acquire::Languages "none";\nAcquire::GzipIndexes "true";\n')

    def command(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        if shutil.which(argv[0]) is None:
            raise CaseError(None, f"{argv[0]} is not installed: kernel@VERSION fetches Debian "
                            "packages with apt (run on Debian or Ubuntu, or use kernel@PATH)")
        env = {**os.environ, "APT_CONFIG": str(self.conf)}
        try:
            return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                                  timeout=APT_LIMIT)
        except subprocess.TimeoutExpired:
            raise CaseError(None, f"{' '.join(argv[:2])} took over {APT_LIMIT:.0f} s") from None

    def lists_age(self) -> float:
        """Seconds since the last successful update (infinite when there was none)."""
        lists = list((self.root / "state" / "lists").glob("*Packages*"))
        return time.time() - max(p.stat().st_mtime for p in lists) if lists else float("inf")

    def update(self, force: bool = False) -> None:
        self.write()
        if not force and self.lists_age() < LISTS_MAX_AGE:
            return
        print(f"kernels: apt-get update ({len(SUITES) + len(SECURITY_SUITES)} Debian suites, "
              f"private configuration {self.conf})", file=sys.stderr, flush=True)
        done = self.command(["apt-get", "update", "-q"])
        if done.returncode != 0 or re.search(r"(?m)^(E:|W: GPG error)", done.stderr):
            why = " / ".join(done.stderr.strip().splitlines()[-3:])
            raise CaseError(None, f"apt-get update with {self.conf} failed (no access to "
                            f"the Debian archive at {mirror()}? set RFCDRILL_DEBIAN_MIRROR): {why}")

    def candidates(self) -> list[Candidate]:
        """Every generic amd64 kernel image the suites carry."""
        found = self.command(["apt-cache", "search", "--names-only", r"^linux-image-[0-9]"])
        names = sorted({line.split(" ")[0] for line in found.stdout.splitlines()
                        if IMAGE_NAME.match(line.split(" ")[0])})
        if not names:
            return []
        madison = self.command(["apt-cache", "madison", *names])
        out = []
        for line in madison.stdout.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) == 3:
                suite = fields[2].split()[1].split("/")[0] if len(fields[2].split()) > 1 else ""
                out.append(Candidate(fields[0], fields[1], suite))
        return out

    def download(self, candidate: Candidate, into: Path) -> Path:
        done = self.command(["apt-get", "download", "-q", f"{candidate.package}={candidate.version}"],
                            cwd=into)
        debs = list(into.glob("*.deb"))
        if done.returncode != 0 or not debs:
            why = " / ".join(done.stderr.strip().splitlines()[-3:])
            raise CaseError(None, f"apt-get download {candidate.package}={candidate.version} "
                            f"failed: {why}")
        return debs[0]


def _dpkg_compare(a: str, b: str) -> int:
    if subprocess.run(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0:
        return 0
    return 1 if subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0 else -1


def pick(request: str, candidates: list[Candidate]) -> Candidate:
    """The newest build of the newest release that `request` names; else a CaseError that
    lists what the suites have."""
    fitting = [c for c in candidates if matches(request, c.upstream)]
    if not fitting:
        series = sorted({".".join(c.upstream.split(".")[:2]) for c in candidates}, key=upstream_key)
        newest = {s: max((c.upstream for c in candidates if matches(s, c.upstream)), key=upstream_key)
                  for s in series}
        listed = ", ".join(f"{s} (newest {newest[s]})" for s in series) or "none"
        raise CaseError(None, f"kernel@{request}: no Debian kernel {request} in "
                        f"{', '.join(SUITES + SECURITY_SUITES)} at {mirror()}; available: {listed}")
    top = max(upstream_key(c.upstream) for c in fitting)
    best = [c for c in fitting if upstream_key(c.upstream) == top]
    return max(best, key=functools.cmp_to_key(lambda a, b: _dpkg_compare(a.version, b.version)))


def fetch(request: str, root: Path | None = None) -> cache.Kernel:
    """The kernel `request` names, from the cache or fetched into it."""
    if not REQUEST.match(request):
        raise CaseError(None, f"kernel@{request}: a version is MAJOR.MINOR or MAJOR.MINOR.PATCH "
                        "(kernel@6.1, kernel@6.12.95), or a path to a kernel image")
    base = root or cache.cache_root()
    if request.count(".") == 2:          # an exact release already kept needs no network
        for kernel in cache.kept(base):
            if kernel.upstream == request:
                return kernel
    apt = Apt(base)
    apt.update()
    candidate = pick(request, apt.candidates())
    where = cache.folder(candidate.package, candidate.version, base)
    kernel = cache.load(where)
    if kernel is not None:
        return kernel
    return _fetch_new(apt, candidate, where)


def _fetch_new(apt: Apt, candidate: Candidate, where: Path) -> cache.Kernel:
    with tempfile.TemporaryDirectory(dir=where.parent, prefix=".fetch-") as tmp:
        print(f"kernels: downloading {candidate.package} {candidate.version} from "
              f"{candidate.suite}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        deb = apt.download(candidate, Path(tmp))
        download_s = time.monotonic() - t0
        size = deb.stat().st_size
        unpacked = Path(tmp) / "tree"
        t0 = time.monotonic()
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], capture_output=True,
                              text=True, timeout=APT_LIMIT)
        if done.returncode != 0:
            raise CaseError(None, f"dpkg-deb -x {deb.name} failed: {done.stderr.strip()}")
        shutil.rmtree(where, ignore_errors=True)
        image, release = prune.keep_needed(unpacked, where)
        kernel = cache.Kernel(str(image), release, candidate.upstream, candidate.package,
                              candidate.version, candidate.suite, size, round(download_s, 2),
                              round(time.monotonic() - t0, 2))
        cache.save(where, kernel)
    print(f"kernels: {candidate.package} {candidate.version}: {size / 1e6:.1f} MB in "
          f"{download_s:.1f} s, unpacked and pruned in {kernel.unpack_s:.1f} s, kept in {where}",
          file=sys.stderr, flush=True)
    return kernel
