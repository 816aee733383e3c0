"""Fixtures for tests that need the lab (real namespaces, links and processes).

`lab`: a module-scoped lab brought up from `lab_inventory` (a list of inventory paths;
default tests/lab/inventory.yml). Override `lab_inventory` in a test module to use your
own inventory:

    @pytest.fixture(scope="module")
    def lab_inventory():
        return [str(Path(__file__).with_name("my_inventory.yml"))]

`lab_factory`: for tests that need labs of their own; `lab_factory([paths])` returns an
up lab, and every lab it made is taken down at the end of the test.

Each lab gets its own directory under /run, so tests never touch a demo lab in
/run/l3ha-lab. `down` always runs, also when a test or `up` itself failed.

The session ends with a leak check: the host must hold no named namespace, link, mount
or lab process that it did not hold when the session began (l3ha_lab.testing.HostSnapshot).
"""

import itertools
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab"))

from l3ha_lab import Lab  # noqa: E402  (needs the sys.path entry above)
from l3ha_lab.testing import HostSnapshot, assert_no_leaks  # noqa: E402
from lab_helpers import DEFAULT_INVENTORY, LAB_DIR_PREFIX  # noqa: E402  (this directory is on sys.path)

_lab_numbers = itertools.count()


def new_lab_dir():
    return LAB_DIR_PREFIX + str(next(_lab_numbers))


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts)")


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found(tmp_path_factory):
    """Fail the session when it left anything on the host (after every lab's `down`).

    Processes count when they are this session's: started by it, or naming one of its lab
    directories or its temporary directory (other labs may run on the machine meanwhile)."""
    if os.geteuid() != 0:
        yield
        return
    owned_by = [LAB_DIR_PREFIX, str(tmp_path_factory.getbasetemp()) + os.sep]
    before = HostSnapshot.take(owned_by)
    yield
    assert_no_leaks(before, owned_by=owned_by)


@pytest.fixture(scope="module")
def lab_inventory():
    return [DEFAULT_INVENTORY]


@pytest.fixture(scope="module")
def lab(lab_inventory):
    _require_root()
    instance = Lab(new_lab_dir())
    try:
        instance.up(lab_inventory)
        yield instance
    finally:
        instance.down()


@pytest.fixture
def lab_factory():
    _require_root()
    made = []

    def make(inventories, lab_dir=None):
        instance = Lab(lab_dir or new_lab_dir())
        made.append(instance)
        instance.up(inventories)
        return instance

    try:
        yield make
    finally:
        errors = []
        for instance in made:
            try:
                instance.down()
            except Exception as exc:  # take every lab down before reporting
                errors.append(exc)
        if errors:
            raise errors[0]
