"""The stack's three targets: registered like the others, each running its profile."""

from __future__ import annotations

import pytest

from harness.targets import DEFAULT, known_names, resolve
from stack.config import PROFILES


@pytest.mark.parametrize("name, profile", [("stack", "rfc"), ("stack-linux", "linux"),
                                           ("stack-alt", "alt")])
def test_each_stack_target_runs_its_profile(name: str, profile: str) -> None:
    spec = resolve(name)
    assert name in known_names() and spec.unavailable == "" and spec.expectations_name == name
    target = spec.make()
    assert target.profile == profile and profile in PROFILES
    assert spec.capabilities.ip_versions == frozenset({"ipv4"})


def test_a_run_naming_no_target_runs_the_kernel_and_stack() -> None:
    assert DEFAULT == ("kernel", "stack")
