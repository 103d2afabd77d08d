"""The environment key: what the packages check, the canary and the timed-training bars are
remembered under. It must change with any install, upgrade or removal."""

from __future__ import annotations

import importlib.metadata
import re

import pytest

from grader import environment

FOLDER = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*?)(-py[\d.]+)?\.(dist|egg)-info$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@pytest.fixture
def fresh_key(monkeypatch, tmp_path):
    """A site folder of its own at the front of the path, and no remembered listing."""
    monkeypatch.syspath_prepend(str(tmp_path))
    environment._installed.cache_clear()
    yield tmp_path
    environment._installed.cache_clear()


def test_every_distribution_python_finds_is_in_the_key():
    seen = {(_normal(m["name"]), m["version"]) for m in
            (FOLDER.match(f) for f in environment._installed()) if m}
    found = {(_normal(d.metadata["Name"]), d.version)
             for d in importlib.metadata.distributions() if d.metadata["Name"]}
    assert len(found) > 20  # numpy, keras, tensorflow, nbclient, ...
    assert found - seen == set()


def test_an_install_an_upgrade_and_a_removal_each_change_the_key(fresh_key):
    before = environment.environment_key(["x"])
    (fresh_key / "made_up_pkg-1.0.dist-info").mkdir()
    environment._installed.cache_clear()
    installed = environment.environment_key(["x"])
    (fresh_key / "made_up_pkg-1.0.dist-info").rename(fresh_key / "made_up_pkg-1.1.dist-info")
    environment._installed.cache_clear()
    upgraded = environment.environment_key(["x"])
    (fresh_key / "made_up_pkg-1.1.dist-info").rmdir()
    environment._installed.cache_clear()
    removed = environment.environment_key(["x"])
    assert len({before, installed, upgraded}) == 3
    assert removed == before
    assert environment.environment_key(["y"]) != removed  # the extra parts count too
