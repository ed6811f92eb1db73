"""Registers rfcdrill's pytest plugin: `pytest` collects case files as test items."""

pytest_plugins = ["harness.pytest_plugin"]
