"""The stack's three targets: registered like the others, each running its profile."""

from __future__ import annotations

import pytest

from harness.targets import DEFAULT, available, known_names, resolve
from stack.config import PROFILES


@pytest.mark.parametrize("name, profile", [("stack", "rfc"), ("stack-linux", "linux"),
                                           ("stack-alt", "alt")])
def test_each_stack_target_runs_its_profile(name: str, profile: str) -> None:
    spec = resolve(name)
    assert name in known_names() and spec.unavailable == "" and spec.expectations_name == name
    target = spec.make()
    assert target.profile == profile and profile in PROFILES
    assert spec.capabilities.ip_versions == frozenset({"ipv4"})


def test_a_run_naming_no_target_runs_every_available_default_target() -> None:
    assert DEFAULT == ("kernel", "stack", "stack-linux", "stack-alt", "lwip", "gvisor")
    here = available()
    assert here[:4] == ["kernel", "stack", "stack-linux", "stack-alt"]     # always available
    for name in ("lwip", "gvisor"):           # an adapter that does not build is left out
        assert (name in here) == (resolve(name).unavailable == "")
