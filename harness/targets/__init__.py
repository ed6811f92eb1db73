"""The targets the runner can play against; each is one module."""

from __future__ import annotations

from harness.targets.kernel import KernelTarget

TARGETS = {"kernel": KernelTarget}
