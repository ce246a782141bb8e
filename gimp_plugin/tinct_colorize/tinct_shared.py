"""The engine's standard-library modules the plug-in uses, found installed or in the checkout.

The option table and the worker's wire protocol and rendezvous are defined once, in ``core``
(standard library only). The installer copies each beside the plug-in under its ``tinct_`` name
(:data:`SHARED`); a plug-in run straight from a checkout (``gimp_plugin/tinct_colorize/``, as the
GIMP tests do) loads the checkout's own file instead. Either way the module is loaded from its
file, under the ``tinct_`` name, without importing the ``core`` package (which GIMP's Python
could not run).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PLUGIN_DIR = Path(__file__).resolve().parent
CHECKOUT = PLUGIN_DIR.parent.parent
# Module name in the plug-in folder -> its source, relative to the project root.
SHARED = {
    "tinct_options": "core/options.py",
    "tinct_wire": "core/worker/wire.py",
    "tinct_rendezvous": "core/worker/rendezvous.py",
    "tinct_hint_regions": "core/hint_regions.py",
}


def load(name: str) -> ModuleType:
    """The module ``name`` (a key of :data:`SHARED`): installed beside the plug-in, else the checkout's.

    Loaded once per process (later calls return the same module). Raises ``ImportError`` when
    neither file exists (a broken installation).
    """
    if name in sys.modules:
        return sys.modules[name]
    for path in (PLUGIN_DIR / f"{name}.py", CHECKOUT / SHARED[name]):
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses look their module up by name
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
    raise ImportError(f"{name}.py is missing from {PLUGIN_DIR}; reinstall the Tinct plug-in")
