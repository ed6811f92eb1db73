"""A mutation fuzzer for rfcdrill's input side: `python -m harness.fuzz --inputs 20000`.

Theory of operation: it takes the project's own inputs (the case files under cases/, their
expectations files, the `.pkt` scripts under tests/pkt) and breaks each one way at a time:
a number, a time, a TCP option list, punctuation, a string escape, bracket nesting, the
encoding, the YAML structure, the file's size, a sysctl name, or a cut (a half-typed file).
Each variant is loaded the way `rfcdrill check` loads it, in a process of its own with a
time limit and a memory limit, and judged:

- valid: it loads;
- error: a CaseError that names a place in that file (`file:line:column`);
- wrong: anything else: another exception, an error with no place or a place outside the
  file, a crash, more than the time limit or the memory limit.

It prints the count of inputs tried and of wrong outcomes at the end and exits 1 if any was
wrong; `--keep DIR` saves the wrong inputs there. `--run` also runs every variant that loads
on the stack target (virtual time), with a wall-clock limit, to find runs that never end.
tests/harness/test_fuzz.py runs a short profile of the same fuzzer in the default test run.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from harness.errors import CaseError

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT = 5.0                  # seconds to load one input
MEMORY_LIMIT = 1 << 30            # bytes of address space a check may add
RUN_LIMIT = 30.0                  # seconds of wall clock for one stack-target run (--run)

Text = str | bytes
Mutator = Callable[[str, random.Random], Text]


# -- the mutations: each breaks one thing ----------------------------------------------------------
_NUMBER_TOKENS = ("99999999999999999999", "9" * 5000, "4294967296", "65536", "256", "-1",
                  "0x1ff", "0x" + "f" * 40, "00", "065535", "02", "1e400", ".", "1.5", "")
_TIMES = ("+99999999999999999999", "+86400.5", "-1", "+.", "+1~+0", "1e9", "+0x7fffffff",
          "99999999999999999999.9", "+0...99999", "*", "+" + "9" * 400)
_OPTIONS = (",mss 99999999", ",wscale 15", ",wscale 256", ",sack 1:2 3:4 5:6 7:8 9:10",
            ",TS val 4294967296 ecr 0", ",opt 999", ",opt 2 len 300 0x" + "00" * 60,
            ",nop" * 41, ",FO " + "ab" * 30, ",mss *", ",sack 4294967296:1", ",opt 253 0x0")
_ESCAPES = ('"\\u12"', '"\\x"', '"\\777"', '"\\U00110000"', '"\\"', '"\\q"', '"\\ud800"',
            '"\\N{DASH}"', '"\\x4"', '"' + "\\n" * 5000 + '"')
_YAML_BREAKS = (
    "requirements: *nowhere\n", "requirements: &a [*a]\n", "id: [\n", "\tid: x\n",
    "script: !!binary xx\n", "timeout: .nan\n", "timeout: 1e400\n", "timeout: 2001-99-99\n",
    "tolerance: {usecs: .inf}\n", "tolerance: {percent: -1}\n", "sysctl: {kernel.hostname: x}\n",
    "sysctl: {net/../../x: 1}\n", "sysctl: {net.ipv4.tcp_sack: " + "9" * 5000 + "}\n",
    "options: {mtu: 99999999}\n", "options: {mtu: " + "9" * 5000 + "}\n", "options: {bogus: 1}\n",
    "targets: [kernel, kernel, mars]\n", "steps: {}\n", "--- \n---\n", "? [a, b]\n: c\n",
    "x: !!python/object:os.system ls\n", "<<: {id: y}\n", "id: " + "a" * 100_000 + "\n",
    "options: {init_scripts: /nonexistent/helper.sh}\n", "options: {ip_version: ipv7}\n",
    "options: {tolerance_usecs: nan}\n", "requirements: [" + "x," * 50_000 + "]\n",
)


def _bomb(depth: int = 10) -> str:
    """An alias of an alias ... of a list: 9**depth values once expanded."""
    lines = ["bomb0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"bomb{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, depth)]
    return "\n".join(lines) + f"\nrequirements: *a{depth - 1}\n"


def _pick(pattern: str, text: str, rng: random.Random) -> tuple[int, int] | None:
    spans = [m.span() for m in re.finditer(pattern, text, re.M)]
    return rng.choice(spans) if spans else None


def _replace_at(text: str, span: tuple[int, int] | None, new: str) -> str:
    if span is None:
        return text + "\n" + new
    return text[:span[0]] + new + text[span[1]:]


def m_number(text: str, rng: random.Random) -> Text:
    return _replace_at(text, _pick(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text, rng),
                       rng.choice(_NUMBER_TOKENS))


def m_time(text: str, rng: random.Random) -> Text:
    return _replace_at(text, _pick(r"(?<=^  )[+]?[\d.]+(?=\s)|^[+]?[\d.]+(?=\s)", text, rng),
                       rng.choice(_TIMES))


def m_option(text: str, rng: random.Random) -> Text:
    span = _pick(r"<(?:mss|nop|sackOK|TS|wscale|sack)[^>\n]*(?=>)", text, rng)
    if span is None:
        return m_number(text, rng)
    return text[:span[1]] + rng.choice(_OPTIONS) + text[span[1]:]


def m_punctuation(text: str, rng: random.Random) -> Text:
    span = _pick(r"[()\[\]{}<>:,.;=\"'`%~*+|&!#-]", text, rng)
    if span is None:
        return text + rng.choice("([{<\"`")
    i = span[0]
    choice = rng.randrange(4)
    if choice == 0:
        return text[:i] + text[i + 1:]
    if choice == 1:
        return text[:i] + text[i] * rng.choice((2, 3, 100)) + text[i + 1:]
    if choice == 2:
        return text[:i] + rng.choice("([{<>}])\"'`%;:,") + text[i + 1:]
    return text[:i] + rng.choice(("%{", "}%", "/*", "*/", "//", "`", "...", "~")) + text[i:]


def m_escape(text: str, rng: random.Random) -> Text:
    span = _pick(r"\.\.\., \d+\)", text, rng)   # the buffer of a read or write: `..., 100)`
    bad = rng.choice(_ESCAPES)
    if span is None:
        return _replace_at(text, _pick(r"\bid: ", text, rng), f"id: {bad}\nx: ")
    return text[:span[0]] + bad + text[span[0] + 3:]


def m_nesting(text: str, rng: random.Random) -> Text:
    depth = rng.choice((33, 200, 5000))
    open_, close = rng.choice((("[", "]"), ("{", "}")))
    span = _pick(r"\[\d+\]|\.\.\., \.\.\.", text, rng)
    nested = open_ * depth + "1" + close * depth
    if span is None:
        return text + f"\nx: {'[' * depth}{']' * depth}\n"
    return _replace_at(text, span, nested)


def m_encoding(text: str, rng: random.Random) -> Text:
    data = text.encode()
    cut = rng.randrange(len(data) + 1)
    choice = rng.randrange(6)
    if choice == 0:
        return data[:cut] + rng.choice((b"\xff", b"\xfe\xff", b"\xed\xa0\x80", b"\xc3")) + data[cut:]
    if choice == 1:
        return data[:cut] + b"\0" + data[cut:]
    if choice == 2:
        return b"\xef\xbb\xbf" + data
    if choice == 3:
        return text.encode("utf-16")
    if choice == 4:
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\n", b"\r")


def m_yaml(text: str, rng: random.Random) -> Text:
    if rng.random() < 0.15:
        return text + _bomb(rng.choice((4, 10)))
    if rng.random() < 0.3:        # a top-level key's value becomes another type
        span = _pick(r"^(?:id|requirements|script|steps|sysctl|tolerance|options|targets): ", text, rng)
        if span is not None:
            value = rng.choice(("[]\n", "{}\n", "~\n", ".nan\n", "!!binary xx\n", "[[[[\n"))
            end = text.find("\n", span[1])
            return text[:span[1]] + value + text[end + 1 if end >= 0 else len(text):]
    return _replace_at(text, _pick(r"^[a-z_]+: .*$", text, rng), rng.choice(_YAML_BREAKS))


def m_size(text: str, rng: random.Random) -> Text:
    return text + "# " + "x" * (1 << 20) + "\n"


def m_sysctl(text: str, rng: random.Random) -> Text:
    return _replace_at(text, _pick(r"net\.ipv[46]\.[a-z_]+", text, rng),
                       rng.choice(("net/../../x", "kernel.hostname", "net..x", "net.", "net.ipv4.*",
                                   "net.ipv4.tcp_sack\n  net.ipv4.tcp_sack")))


def m_cut(text: str, rng: random.Random) -> Text:
    return text[:rng.randrange(len(text) + 1)]


def m_flip(text: str, rng: random.Random) -> Text:
    data = bytearray(text.encode())
    for _ in range(rng.choice((1, 3, 10))):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


MUTATORS: dict[str, Mutator] = {
    "number": m_number, "time": m_time, "option": m_option, "punctuation": m_punctuation,
    "escape": m_escape, "nesting": m_nesting, "encoding": m_encoding, "yaml": m_yaml,
    "size": m_size, "sysctl": m_sysctl, "cut": m_cut, "flip": m_flip,
}


@dataclass(frozen=True)
class Variant:
    seed: Path          # the input it was made from
    mutation: str
    data: bytes

    @property
    def name(self) -> str:
        """Its file name when written out: an expectations file keeps its place and name."""
        if self.seed.parent.name == "expectations":
            return f"expectations/{self.seed.name}"
        return self.seed.name


def seeds(root: Path = ROOT) -> list[Path]:
    """The project's own inputs: case files, expectations files, tests/pkt scripts."""
    found = sorted(p for p in (root / "cases").rglob("*") if p.suffix in (".yaml", ".pkt"))
    return found + sorted((root / "tests" / "pkt").glob("*.pkt"))


def variants(count: int, rng: random.Random, inputs: list[Path] | None = None) -> Iterator[Variant]:
    """`count` variants, each one input broken one way (mutations taken in turn)."""
    inputs = inputs or seeds()
    names = list(MUTATORS)
    texts: dict[Path, str] = {}
    for i in range(count):
        seed = rng.choice(inputs)
        text = texts.setdefault(seed, seed.read_text())
        name = names[i % len(names)]
        mutated = MUTATORS[name](text, rng)
        yield Variant(seed, name, mutated if isinstance(mutated, bytes) else mutated.encode())


# -- judging one input ------------------------------------------------------------------------------
def check_file(path: str) -> str:
    """Load `path` as `rfcdrill check` does; 'valid', 'error: ...' or 'wrong: ...'."""
    from harness import expectations
    from harness.loader import load
    text = Path(path).read_bytes()
    lines = text.count(b"\n") + 1
    try:
        if Path(path).parent.name == "expectations":
            expectations.load_file.cache_clear()
            expectations.load_file(path)
        else:
            load(path)
    except CaseError as exc:
        loc = exc.loc
        if loc is None or loc.file != path or not 1 <= loc.line <= lines or loc.col < 1:
            return f"wrong: an error without its place in the file: {exc}"
        if len(str(exc)) > 2000:
            return f"wrong: an error message of {len(str(exc))} characters"
        return f"error: {exc}"
    except BaseException as exc:         # what the fuzzer is here to find
        import traceback
        return "wrong: " + "".join(traceback.format_exception(exc, limit=-4))
    return "valid"


def isolated(action: Callable[[], str], limit: float, memory: int = MEMORY_LIMIT) -> str:
    """Run `action` in a forked process with a wall-clock limit and a cap on added memory;
    its answer, or 'wrong: ...' when it crashed, hung or ran out of memory."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)          # a group of its own: the limit kills what it started too
        os.close(rfd)
        code = 0
        try:
            used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            resource.setrlimit(resource.RLIMIT_AS, (used + memory + (256 << 20),) * 2)
            answer = action()
            os.write(wfd, answer.encode("utf-8", "replace")[:8192])
        except BaseException as exc:
            os.write(wfd, f"wrong: {type(exc).__name__}: {exc}".encode()[:8192])
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    deadline = time.monotonic() + limit
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"wrong: still running after {limit:g} s"
            chunk = os.read(rfd, 8192)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
    _, status = os.waitpid(pid, 0)
    answer = b"".join(chunks).decode("utf-8", "replace")
    if not answer:
        return f"wrong: the process ended without an answer (status {status:#x})"
    return answer


def run_on_stack(path: str) -> str:
    """Run a case file that loads on the stack target, in this process (so that the time
    limit's kill ends it): 'valid' whatever its verdict, 'wrong' for an exception that is
    neither a verdict nor a CaseError (a bug the loader should have caught, or the runner's)."""
    import traceback
    from harness.loader import load
    from harness.runner import RunFailure, Runner
    from harness import netns
    from harness.targets import resolve
    script = load(path)
    netns.enter_private_netns()     # targets leave isolation to their caller (harness.execute)
    target = resolve("stack").make()
    try:
        target.setup(script)
        Runner(script, target).run()
    except (RunFailure, CaseError):
        pass
    except Exception as exc:
        return "wrong: at run time: " + "".join(traceback.format_exception(exc, limit=-4))
    return "valid"


# -- the command ------------------------------------------------------------------------------------
@dataclass
class Tally:
    tried: int = 0
    valid: int = 0
    errors: int = 0
    wrong: int = 0


def warm() -> None:
    """Read the catalogue and the schema once, before the forks, as a long-lived
    `rfcdrill check` would: each variant's process then pays for its own input only."""
    from harness.catalog import requirement_ids
    from harness.loader import schema
    requirement_ids()
    schema()


def fuzz(count: int, seed: int, keep: Path | None = None, run: bool = False,
         report: Callable[[str], None] = print) -> Tally:
    warm()
    rng = random.Random(seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="rfcdrill-fuzz-") as tmp:
        for index, variant in enumerate(variants(count, rng)):
            path = Path(tmp) / str(index) / variant.name
            path.parent.mkdir(parents=True)
            path.write_bytes(variant.data)
            answer = isolated(lambda: check_file(str(path)), TIME_LIMIT)
            if run and answer == "valid" and variant.seed.parent.name != "expectations":
                answer = isolated(lambda: run_on_stack(str(path)), RUN_LIMIT)
            tally.tried += 1
            if answer.startswith("wrong"):
                tally.wrong += 1
                report(f"WRONG {variant.mutation} of {variant.seed.relative_to(ROOT)}: "
                       + answer.strip().splitlines()[-1][:300])
                if keep is not None:
                    kept = keep / f"{index}-{variant.mutation}-{variant.seed.name}"
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    kept.write_bytes(variant.data)
            elif answer.startswith("error"):
                tally.errors += 1
            else:
                tally.valid += 1
            path.unlink()
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000, help="how many variants to try")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same inputs)")
    parser.add_argument("--keep", type=Path, help="save the inputs with a wrong outcome here")
    parser.add_argument("--run", action="store_true",
                        help="also run each variant that loads on the stack target (needs root)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tally = fuzz(args.inputs, args.seed, args.keep, args.run)
    print(f"{tally.tried} inputs tried in {time.monotonic() - started:.0f} s: {tally.valid} valid, "
          f"{tally.errors} located errors, {tally.wrong} wrong")
    return 1 if tally.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
