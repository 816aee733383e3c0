"""The collection's vocabulary and defaults, for the lab and the tests.

The lab is not part of the collection and does not need it installed: it loads the two
standard-library-only modules by their path in this checkout, so that names, paths and
defaults stay defined once (plugins/module_utils/_vocabulary.py and _defaults.py).
"""

import importlib.util
import os

PLUGINS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "plugins", "module_utils")


def _load(name):
    spec = importlib.util.spec_from_file_location("l3ha_lab._" + name, os.path.join(PLUGINS, "_%s.py" % name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vocabulary = _load("vocabulary")
defaults = _load("defaults")
