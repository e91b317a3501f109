"""Tools and files the suite needs from Debian packages. ``make test`` (scripts/system-deps.sh)
installs every one of them, so a missing one is a broken set-up: the test fails and names the
package, rather than skipping and letting CI pass without the check having run."""

from __future__ import annotations

import os
import shutil

import pytest


def require_command(command: str, package: str) -> None:
    if shutil.which(command) is None:
        pytest.fail(f"{command} is missing: install the Debian package {package} (make test does)", pytrace=False)


def require_file(path: str, package: str) -> None:
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: install the Debian package {package} (make test does)", pytrace=False)
