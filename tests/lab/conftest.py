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
"""

import itertools
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab"))

from l3ha_lab import Lab  # noqa: E402  (needs the sys.path entry above)

DEFAULT_INVENTORY = str(REPO / "tests" / "lab" / "inventory.yml")
_lab_numbers = itertools.count()


def new_lab_dir():
    return "/run/l3ha-lab-test-%d-%d" % (os.getpid(), next(_lab_numbers))


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (namespaces, mounts)")


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
