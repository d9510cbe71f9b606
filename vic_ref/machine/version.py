"""vic-machine's own build (VIC's `pkg/version`): what `vic-machine version` prints and what create records.

Versions are ordered by their dotted version string (vic-ref has no build numbers: BuildNumber is "0"); the git
commit is informational only, so a rebuilt checkout does not make its own VCHs "different" (VIC compares
BuildNumber alone).
"""
from __future__ import annotations

import functools
import re
import subprocess

from ..config.executor import PLUGIN_VERSION, Build
from ..config.vch import APPLIANCE_VERSION
from . import isos

BUILD_NUMBER = "0"


@functools.cache
def git_commit() -> str:
    """The short commit of the checkout vic_ref runs from, or "" outside a git checkout."""
    try:
        done = subprocess.run(["git", "-C", isos.repo_root(), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def installer_build() -> Build:
    return Build(version=APPLIANCE_VERSION, git_commit=git_commit(), build_number=BUILD_NUMBER, state="",
                 plugin_version=PLUGIN_VERSION)


def release_build(release: str | None = None) -> Build:
    """The build of a release vic-ref ships (`vic_ref.migration.RELEASES`): the installer's own, or the older one
    it upgrades from (`create --appliance-version`). UsageError-free: the caller checks `release in RELEASES`."""
    from ..migration import RELEASES
    build = installer_build()
    if not release or release == build.version:
        return build
    return Build(version=release, git_commit=build.git_commit, build_number=BUILD_NUMBER, state="",
                 plugin_version=RELEASES[release])


def short_version(build: Build | None) -> str:
    """VIC's Build.ShortVersion(): `<version>-<build number>-<commit>`; "unknown" without a build."""
    if build is None or not build.version:
        return "unknown"
    return f"{build.version}-{build.build_number or BUILD_NUMBER}-{build.git_commit or 'unknown'}"


def _key(version: str) -> tuple:
    parts = re.findall(r"\d+|[A-Za-z]+", version.lstrip("v"))
    return tuple((0, int(p)) if p.isdigit() else (-1, p) for p in parts)


def _order(build: Build | None) -> tuple:
    if build is None or not build.version:
        return ((), -1)
    number = build.build_number or ""
    return (_key(build.version), int(number) if number.isdigit() else 0)


def compare(a: Build | None, b: Build | None) -> int:
    """-1, 0 or 1 as build `a` is older than, the same as or newer than `b` (version, then build number)."""
    ka, kb = _order(a), _order(b)
    return (ka > kb) - (ka < kb)


def upgrade_status(installer: Build, vch: Build | None, *, in_progress: bool = False) -> str:
    """VIC's GetUpgradeStatusShortMessage."""
    if in_progress:
        return "Upgrade in progress"
    if vch is None or not vch.version:
        return "Unknown: the VCH records no version"
    order = compare(vch, installer)
    if order == 0:
        return "Up to date"
    if order < 0:
        return f"Upgradeable to {short_version(installer)}"
    return "VCH has newer version"


__all__ = ["installer_build", "release_build", "short_version", "compare", "upgrade_status", "git_commit"]
