"""How a mutant changes the stack: named patches of one attribute each, applied in a process.

Theory of operation: a `Mutant` is a name, the catalogue ids of the requirements it breaks, a
one-line description and a few `Patch`es. A patch names an owner (a class or module of
stack/) and one attribute of it, and builds the replacement from the original, so a mutant is
a small wrapper around the code it breaks, never a copy of a stack module. `applied` installs
the patches and, on leaving, puts the originals back; `rfcdrill mutate` installs them in a
case's own process (harness.execute runs `Job.prepare` there), so mutants never meet.

The helpers cover the shapes the registry needs: `method` (any function or property),
`event_method` (a `Connection` event, rebuilt around the inner function so that the event's
bookkeeping stays), and `config` (a `Config` field forced, or changed only where no sysctl
sets it). A replaced timer action is replaced in `Connection._TIMER_ACTIONS` too, which holds
the functions themselves.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from stack.config import Config
from stack.connection import Connection
from stack.events import event

_MISSING = object()


@dataclass(frozen=True)
class Patch:
    owner: Any                            # a class or module of the stack
    attr: str
    build: Callable[[Any], Any]           # the original -> its replacement


@dataclass(frozen=True)
class Mutant:
    name: str
    requirements: tuple[str, ...]
    description: str
    patches: tuple[Patch, ...]


def method(owner: Any, attr: str, build: Callable[[Any], Any]) -> Patch:
    return Patch(owner, attr, build)


def event_method(attr: str, build: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Patch:
    """A `Connection` event (see stack.events.event): `build` gets the undecorated original."""
    return Patch(Connection, attr, lambda orig: event(build(orig.__wrapped__)))


def config(sysctl: str | None = None, **fields: object) -> Patch:
    """Config fields changed: always, or (with `sysctl`) only when that sysctl is not set."""
    def build(orig: Any) -> Any:
        def from_sysctls(cls: type, sysctl_values: dict[str, object] | None = None,
                         **overrides: object) -> tuple[Config, list[str]]:
            cfg, unsupported = orig.__func__(cls, sysctl_values, **overrides)
            if sysctl is None or sysctl not in (sysctl_values or {}):
                cfg = replace(cfg, **fields)
            return cfg, unsupported
        return classmethod(from_sysctls)
    return Patch(Config, "from_sysctls", build)


def original(owner: Any, attr: str) -> Any:
    """The attribute as the owner holds it (a classmethod or property object, not bound)."""
    for klass in (owner.__mro__ if isinstance(owner, type) else ()):
        if attr in vars(klass):
            return vars(klass)[attr]
    if not hasattr(owner, attr):
        raise AttributeError(f"{getattr(owner, '__name__', owner)} has no attribute {attr!r}")
    return getattr(owner, attr)


@contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    """The stack with `mutant`'s patches installed; the originals come back on leaving."""
    undo: list[Callable[[], None]] = []
    try:
        for patch in mutant.patches:
            undo.append(_install(patch))
        yield
    finally:
        for step in reversed(undo):
            step()


def install(mutant: Mutant) -> None:
    """Install for good (in a case's own process, which ends with the case)."""
    for patch in mutant.patches:
        _install(patch)


def _install(patch: Patch) -> Callable[[], None]:
    owner, attr = patch.owner, patch.attr
    before = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) else getattr(owner, attr)
    old = original(owner, attr)
    new = patch.build(old)
    setattr(owner, attr, new)
    actions = Connection._TIMER_ACTIONS
    saved = dict(actions)
    if owner is Connection:
        for timer, action in actions.items():
            if action is old:
                actions[timer] = new

    def restore() -> None:
        if before is _MISSING:
            delattr(owner, attr)
        else:
            setattr(owner, attr, before)
        actions.clear()
        actions.update(saved)
    return restore


def mutant(name: str, requirements: list[str], description: str, *patches: Patch) -> Mutant:
    return Mutant(name, tuple(requirements), description, tuple(patches))


def guard(owner: Any, attr: str, when: Callable[..., bool],
          instead: Callable[..., Any] = lambda *args: None) -> Patch:
    """The method does `instead` (default: nothing) where `when` holds, else what it did."""
    def build(orig: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return instead(*args, **kwargs) if when(*args, **kwargs) else orig(*args, **kwargs)
        return guarded
    return Patch(owner, attr, build)


def after(owner: Any, attr: str, then: Callable[..., Any]) -> Patch:
    """The method runs, then `then(result, *args)`, whose value is returned."""
    def build(orig: Callable[..., Any]) -> Callable[..., Any]:
        def followed(*args: Any, **kwargs: Any) -> Any:
            return then(orig(*args, **kwargs), *args, **kwargs)
        return followed
    return Patch(owner, attr, build)


def constant(owner: Any, attr: str, value: Any) -> Patch:
    """A property (or method) that always gives `value`."""
    return Patch(owner, attr, lambda orig: property(lambda self: value)
                 if isinstance(orig, property) else (lambda *args: value))
