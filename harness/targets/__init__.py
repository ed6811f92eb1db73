"""The targets the runner can play against; each is one module."""

from __future__ import annotations

from harness.targets.base import Target
from harness.targets.kernel import KernelTarget
from harness.targets.stack import StackAltTarget, StackLinuxTarget, StackTarget

TARGETS: dict[str, type[Target]] = {"kernel": KernelTarget, "stack": StackTarget,
                                    "stack-linux": StackLinuxTarget, "stack-alt": StackAltTarget}
