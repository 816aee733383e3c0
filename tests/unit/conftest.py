"""Unit tests import the collection as `ansible_collections.l3ha.routers`.

scripts/setup.sh links this checkout into .build/collections; put that on sys.path.
"""
import pathlib
import sys

COLLECTIONS = pathlib.Path(__file__).resolve().parents[2] / ".build" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
