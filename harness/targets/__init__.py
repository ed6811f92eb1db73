"""The targets the runner can play against: natives (one module each) and adapters speaking
the target protocol (PROTOCOL.md); `registry.resolve` turns a name into a target."""

from __future__ import annotations

from harness.targets.registry import DEFAULT, NATIVE, TargetSpec, available, known_names, resolve

__all__ = ["DEFAULT", "NATIVE", "TargetSpec", "available", "known_names", "resolve"]
