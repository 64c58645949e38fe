"""Run a function after a module is imported, without importing it: how `import occ_hf` stays cheap.

Registering with transformers' Auto classes or datasets' packaged modules needs those libraries, whose import costs
seconds (torch comes with them). `call_when_imported(name, callback)` calls `callback(module)` at once if `name` is
already imported, else once its import has finished, through a `sys.meta_path` finder.

A callback does not run the moment its module finishes: transformers imports its auto modules from inside each
other's imports (`processing_auto` -> `modeling_utils` -> ... -> `configuration_auto`), and a callback importing
transformers classes at that moment meets half-initialised modules. So while callbacks wait, the finder watches every
module of the same top-level package (`transformers.*`) and of the callback's package (`occ_hf.*`), and runs the
ready callbacks when the outermost of those imports returns.

```python
from occ_hf.import_hooks import call_when_imported

call_when_imported("transformers.models.auto.configuration_auto", lambda module: print("AutoConfig is here"))
```
"""

import importlib.abc
import sys
from collections.abc import Callable
from types import ModuleType


__all__ = ["call_when_imported"]

_waiting: dict[str, list[Callable[[ModuleType], None]]] = {}  # module name -> callbacks, module not imported yet
_ready: list[tuple[Callable[[ModuleType], None], ModuleType]] = []  # imported, waiting for the outermost import
_watched_packages: set[str] = set()  # top-level packages whose imports are counted
_state = {"imports": 0, "running": False}  # watched imports in progress; whether callbacks are running


class _WatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, name: str):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        _state["imports"] += 1
        try:
            self._loader.exec_module(module)
        finally:
            _state["imports"] -= 1
        _ready.extend((callback, module) for callback in _waiting.pop(self._name, []))
        # A callback's own imports end here too: the loop already running picks up what they make ready.
        if _state["imports"] == 0 and not _state["running"]:
            _run_ready()

    def __getattr__(self, name):
        # get_resource_reader, is_package, get_source...: the wrapped loader answers them.
        return getattr(self._loader, name)


class _WatchingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not (_waiting or _ready) or fullname.split(".")[0] not in _watched_packages:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _WatchingLoader(spec.loader, fullname)
                return spec
        return None


_finder = _WatchingFinder()


def _run_ready() -> None:
    _state["running"] = True
    try:
        while _ready:
            callback, module = _ready.pop(0)
            callback(module)
    finally:
        _state["running"] = False
    if not _waiting and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
        _watched_packages.clear()


def call_when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """
    Calls `callback(module)` once module `name` is imported: now if it already is, else after its import.

    Args:
        name (`str`):
            Full module name, e.g. `"transformers.models.auto.modeling_auto"`.
        callback (`Callable[[ModuleType], None]`):
            Called once with the module, when no import of the module's top-level package is in progress.
    """
    module = sys.modules.get(name)
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        callback(module)
        return
    _waiting.setdefault(name, []).append(callback)
    # The callback's own package is watched too: importing it may be what imports `name`, and the callback then
    # waits for that outer import to finish before it imports from the package.
    _watched_packages.update({name.split(".")[0], callback.__module__.split(".")[0]})
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
