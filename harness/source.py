"""Reading input files: case files, `.pkt` scripts and expectations files, within bounds.

Every problem is a CaseError at `file:line:column`. A path that is not a regular file (a
FIFO, a device, a socket) is refused before it is opened, so nothing waits on it; a file
larger than limits.MAX_FILE_BYTES or not UTF-8 is refused. YAML is parsed with its aliases
counted before anything is built: an alias of an alias of a list ("billion laughs") that
would expand past limits.MAX_YAML_VALUES values, or collections nested deeper than
limits.MAX_NESTING, are an error at the alias or bracket that crosses the bound.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from harness import limits
from harness.errors import CaseError, Loc

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, with a scalar it cannot construct (an integer past Python's digit
    limit, a date such as 2001-99-99) reported at its place instead of as a ValueError."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {limits.brief(str(exc), 80)}",
                node.start_mark) from None


def regular_file(path: str) -> os.stat_result:
    """The file's status; a path that is missing or not a regular file is a CaseError (at
    once: a FIFO is never opened, so nothing waits for a writer)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CaseError(Loc(path, 1), f"cannot read the file: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CaseError(Loc(path, 1), "not a regular file (a case, script or expectations "
                        "file is a regular file; directories are searched for them)")
    return info


def read_text(path: str) -> str:
    """A file's text; not a regular file, too large, or not UTF-8 is a CaseError."""
    info = regular_file(path)
    if info.st_size > limits.MAX_FILE_BYTES:
        raise CaseError(Loc(path, 1), f"the file has {info.st_size} bytes; the limit is "
                        f"{limits.MAX_FILE_BYTES}")
    try:
        with open(path, "rb") as f:
            data = f.read(limits.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CaseError(Loc(path, 1), f"cannot read the file: {exc.strerror}") from None
    if len(data) > limits.MAX_FILE_BYTES:
        raise CaseError(Loc(path, 1), f"the file has more than {limits.MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CaseError(Loc(path, line, col), "not UTF-8 text (byte "
                        f"0x{data[exc.start]:02x})") from None
    if "\0" in text:
        offset = text.index("\0")
        raise CaseError(_offset_loc(path, text, offset), "a NUL character in the file")
    return text


def _offset_loc(path: str, text: str, offset: int) -> Loc:
    line = text.count("\n", 0, offset) + 1
    return Loc(path, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _mark_loc(path: str, mark: yaml.Mark | None, text: str = "") -> Loc:
    """A YAML mark as a place in the file. The scanner can mark the end of the stream one
    line past a last line that has no newline: that is the end of the last line."""
    if mark is None:
        return Loc(path, 1)
    lines = text.split("\n")
    if text and mark.line >= len(lines):
        return Loc(path, len(lines), len(lines[-1]) + 1)
    return Loc(path, mark.line + 1, mark.column + 1)


def yaml_error(path: str, exc: yaml.YAMLError, text: str = "") -> CaseError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return CaseError(_mark_loc(path, mark, text), f"YAML syntax: {limits.brief(problem)}")


def check_yaml_size(text: str, path: str) -> None:
    """Count the values of a YAML text with every alias expanded, and its nesting depth,
    from the parser's events (nothing is built); past a bound it is an error there."""
    sizes: dict[str, int] = {}        # anchor -> values it expands to
    open_: list[list[Any]] = []       # per open collection: [anchor, values so far]
    total = 0
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.CollectionStartEvent):
                open_.append([event.anchor, 1])
                total += 1
                if len(open_) > limits.MAX_NESTING:
                    raise CaseError(_mark_loc(path, event.start_mark), "YAML collections "
                                    f"nested more than {limits.MAX_NESTING} deep")
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, count = open_.pop()
                if anchor is not None:
                    sizes[anchor] = count
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if isinstance(event, yaml.AliasEvent):
                    count = sizes.get(event.anchor, 1)
                else:
                    count = 1
                    if event.anchor is not None:
                        sizes[event.anchor] = 1
                total += count
            else:
                continue
            if open_:
                open_[-1][1] += count
            if total > limits.MAX_YAML_VALUES:
                raise CaseError(_mark_loc(path, event.start_mark), "the YAML expands to more "
                                f"than {limits.MAX_YAML_VALUES} values (aliases included)")
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, text) from None


def load_yaml(text: str, path: str) -> tuple[yaml.Node | None, Any]:
    """A YAML document as nodes (for positions) and as data, within limits' bounds."""
    check_yaml_size(text, path)
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc, text) from None
    return root, data
