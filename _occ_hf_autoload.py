"""occ-hf's import hook: registers occ-hf with `datasets` and `transformers` once they are imported, in any Python
process of the environment occ-hf is installed in, without importing either itself.

Why: TRL's own command line (`trl sft|dpo --config recipe.yaml`) runs its training script in a new process that
never imports occ-hf, so without this `load_dataset("occ-obman-cot", ...)` and `AutoModelForImageTextToText` know
neither the dataset builder nor OccInternVL there. And `import occ_hf` itself must stay cheap: it cannot import
datasets or transformers (seconds, torch comes with them) just to register with them.

How: Python has no post-import hook, so this is one. A finder at the front of `sys.meta_path` wraps the loader of
every module of `datasets`, `transformers` and `occ_hf` to count the imports in progress; each time the outermost one
returns, it imports `occ_hf` (the first time) and calls `occ_hf.registration.register_imported()`, which registers
with what is imported by then; once nothing waits, the finder removes itself. Waiting for the outermost import is what
makes this safe: transformers imports its auto modules from inside each other's imports, and occ_hf's own modules
import transformers, so a registration run in between would meet half-initialised modules.

The finder is installed by `occ_hf-autoload.pth`, which installing occ-hf (a wheel or `pip install -e .`) puts in
site-packages: Python runs its one line at start-up, which calls [`install`] unless the environment variable
`OCC_HF_AUTOLOAD` is `0`. `import occ_hf` installs it too, for what it could not register at once. Start-up itself
imports nothing (no torch, no datasets, not even occ_hf, so that the occ_hf that PYTHONPATH or the current folder
provides is the one imported); `benchmarks/bench_startup.py` measures what it adds. The build step that writes the
`.pth` is in `setup.py`; the module's name is in every installed `.pth`, so it stays.

```bash
OCC_HF_AUTOLOAD=0 trl sft --config recipe.yaml   # switch it off for one command
```
"""

import sys


__all__ = ["PTH_LINE", "WATCHED", "install", "uninstall"]

# Top-level packages whose imports are counted: the two that occ-hf registers with, and occ_hf, whose modules import
# transformers (a registration must not import a module of ours that is half-way through its own import).
WATCHED = frozenset({"datasets", "transformers", "occ_hf"})

# The line of `occ_hf-autoload.pth`. `site` executes .pth lines that start with `import`; the variable is checked
# before this module is imported, so that switching the hook off costs nothing.
PTH_LINE = 'import os; os.environ.get("OCC_HF_AUTOLOAD", "1") == "0" or __import__("_occ_hf_autoload").install()\n'


class _CountingLoader:
    # Wraps a watched module's loader; the wrapped loader answers everything but `exec_module`.
    def __init__(self, loader, finder: "_RegisterAfterImports"):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._finder.imports_in_progress += 1
        try:
            self._loader.exec_module(module)
        finally:
            self._finder.imports_in_progress -= 1
        self._finder.import_returned()

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _RegisterAfterImports:
    # A meta path finder only needs `find_spec` (subclassing importlib.abc.MetaPathFinder would import importlib.abc
    # at every start-up, which costs more than the rest of this file).
    def __init__(self):
        self.imports_in_progress = 0
        self.registering = False  # the registration's own imports return while it runs: they must not re-enter it

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountingLoader(spec.loader, self)
                return spec
        return None

    def import_returned(self) -> None:
        if self.imports_in_progress or self.registering:
            return
        self.registering = True
        try:
            registration = _import_occ_hf_registration()
            waiting = registration is not None and registration.register_imported()
        finally:
            self.registering = False
        if not waiting:
            uninstall()


def _import_occ_hf_registration():
    try:
        from occ_hf import registration  # the first time, occ_hf's import registers with what is imported
    except Exception as error:  # a broken or half-removed occ-hf must not break `import datasets`
        uninstall()  # one warning, not one at every later import
        import warnings

        warnings.warn(
            f"occ-hf's import hook ({__file__}) could not import occ_hf ({type(error).__name__}: {error}), so "
            f"'occ-obman-cot' and OccInternVL are not registered in this process. Reinstall occ-hf, or set "
            "OCC_HF_AUTOLOAD=0 to switch the hook off.",
            stacklevel=3,
        )
        return None
    return registration


_finder = _RegisterAfterImports()


def install() -> None:
    """Puts the finder at the front of `sys.meta_path` (once): `occ_hf-autoload.pth` calls it at start-up, and
    `occ_hf.registration.register` when a library it registers with is not imported yet."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Takes the finder out of `sys.meta_path`; nothing registered is undone."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
