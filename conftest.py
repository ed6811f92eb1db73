"""The repository's root for pytest.

rfcdrill's pytest plugin is installed (a `pytest11` entry point, see pyproject.toml), so case
files are collected in any folder without a conftest. This file makes the repository root
pytest's rootdir and puts it on sys.path, so that the project's tests can import their shared
helpers as `tests.conftest`.
"""
