"""occ-hf's start-up hook: `import occ_hf` the moment `datasets` or `transformers` is first imported, in any Python
process of the environment occ-hf is installed in.

Why: TRL's own command line (`trl sft|dpo --config recipe.yaml`) runs its training script in a new process that
never imports occ-hf, so without this `load_dataset("occ-obman-cot", ...)` and `AutoModelForImageTextToText` know
neither the dataset builder nor OccInternVL there. `import occ_hf` registers both (lazily, `occ_hf.import_hooks`).

How: installing occ-hf (a wheel or `pip install -e .`) puts `occ_hf-autoload.pth` in site-packages; Python runs its
one line at start-up, which calls [`install`] unless the environment variable `OCC_HF_AUTOLOAD` is `0`. That puts a
finder at the front of `sys.meta_path` which does nothing until an import of `datasets` or `transformers` starts;
then it removes itself, imports `occ_hf` and hands the import on. Start-up itself imports nothing (no torch, no
datasets, not even occ_hf, so that the occ_hf that PYTHONPATH or the current folder provides is the one imported);
`benchmarks/bench_startup.py` measures what it adds. The build step that writes the `.pth` is in `setup.py`.

```bash
OCC_HF_AUTOLOAD=0 trl sft --config recipe.yaml   # switch it off for one command
```
"""

import sys


__all__ = ["PTH_LINE", "TRIGGERS", "install"]

# The modules whose import imports occ_hf first: every registration of occ-hf waits on one of them.
TRIGGERS = frozenset({"datasets", "transformers"})

# The line of `occ_hf-autoload.pth`. `site` executes .pth lines that start with `import`; the variable is checked
# before this module is imported, so that switching the hook off costs nothing.
PTH_LINE = 'import os; os.environ.get("OCC_HF_AUTOLOAD", "1") == "0" or __import__("_occ_hf_autoload").install()\n'


class _ImportOccHfFirst:
    # A meta path finder (it only needs `find_spec`; subclassing importlib.abc.MetaPathFinder would import
    # importlib.abc at every start-up, which costs more than the rest of this file).
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TRIGGERS:
            return None
        uninstall()
        try:
            import occ_hf  # noqa: F401 (imported for its registrations)
        except Exception as error:  # a broken or half-removed occ-hf must not break `import datasets`
            import warnings

            warnings.warn(
                f"occ-hf's start-up hook ({__file__}) could not import occ_hf ({type(error).__name__}: {error}), so "
                f"'occ-obman-cot' and OccInternVL are not registered in this process. Reinstall occ-hf, or set "
                "OCC_HF_AUTOLOAD=0 to switch the hook off.",
                stacklevel=2,
            )
            return None
        # occ_hf has put its own finder in sys.meta_path, which must see this import to register after it: so the
        # spec comes from a fresh search of sys.meta_path, not from the finders after this one.
        import importlib.util

        return importlib.util.find_spec(fullname)


_finder = _ImportOccHfFirst()


def install() -> None:
    """Puts the finder at the front of `sys.meta_path` (once); `occ_hf-autoload.pth` calls it at start-up."""
    if "occ_hf" in sys.modules or _finder in sys.meta_path:
        return
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Takes the finder out of `sys.meta_path`; nothing else of occ-hf is undone."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
