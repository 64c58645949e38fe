"""Run a callback once a module is imported, without importing it ourselves.

`import occ_hf` must stay cheap (importing `datasets` costs about a second, `transformers` models more), yet
`load_dataset("occ-obman-cot")` must find the builder whichever of `occ_hf` and `datasets` is imported first.
`when_imported("datasets", register)` calls `register` now if `datasets` is already imported, or right after the
first `import datasets` otherwise.
"""

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable


__all__ = ["when_imported"]


def when_imported(module_name: str, callback: Callable[[], None]) -> None:
    """Calls `callback()` once `module_name` is imported (at once if it already is)."""
    if module_name in sys.modules:
        callback()
        return
    sys.meta_path.insert(0, _AfterImport(module_name, callback))


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, module_name: str, callback: Callable[[], None]):
        self.module_name = module_name
        self.callback = callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module_name:
            return None
        # Step aside, let the normal finders locate the module, then wrap its loader to call back after it ran.
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        callback = self.callback

        def exec_then_call_back(module):
            exec_module(module)
            callback()

        spec.loader.exec_module = exec_then_call_back
        return spec
