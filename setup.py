"""The one build step that pyproject.toml cannot declare: `occ_hf-autoload.pth`, occ-hf's start-up hook (see
`_occ_hf_autoload.py`), written at the top of site-packages by a wheel and by an editable install alike.

Everything else (metadata, packages, dependencies) is in pyproject.toml. Why a build command: setuptools ships files
beside packages, not at the top of site-packages (`data-files` install under `sys.prefix`, so a .pth there would need
the version-specific `lib/pythonX.Y/site-packages` path and would miss on Windows and in editable installs). So
`build_autoload_pth` runs as a sub-command of `build`, writing the .pth into `build_lib`, which a wheel installs at
the top of site-packages. An editable wheel (PEP 660, `pip install -e .`) ships only setuptools' own path hook from
`build_lib`, so there the command writes the .pth into the folder the editable wheel is assembled from instead.

```bash
pip install .        # or: pip install -e .  /  python -m build --wheel
```
"""

import ast
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build


PTH_NAME = "occ_hf-autoload.pth"


def _pth_line() -> str:
    # Read from the hook module's source rather than imported, so the build needs nothing on sys.path.
    source = Path(__file__).with_name("_occ_hf_autoload.py").read_text()
    line = next(line for line in source.splitlines() if line.startswith("PTH_LINE = "))
    return ast.literal_eval(line.removeprefix("PTH_LINE = "))


class build_autoload_pth(Command):
    """Writes `occ_hf-autoload.pth` at the top of the wheel."""

    description = "write occ-hf's start-up hook (occ_hf-autoload.pth) at the top of site-packages"
    user_options = []
    editable_mode = False  # set by setuptools' editable_wheel

    def initialize_options(self):
        self.build_lib = None

    def finalize_options(self):
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def run(self):
        # editable_wheel points the install command's lib folder at the wheel it is assembling.
        folder = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        target = Path(folder, PTH_NAME)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_pth_line(), encoding="utf-8")

    def get_outputs(self):
        # In editable mode the file is not in build_lib, and setuptools' strict mode would try to link it from there.
        return [] if self.editable_mode else [str(Path(self.build_lib, PTH_NAME))]

    def get_source_files(self):
        return ["_occ_hf_autoload.py"]


class build_with_autoload_pth(build):
    sub_commands = [*build.sub_commands, ("build_autoload_pth", None)]


setup(cmdclass={"build": build_with_autoload_pth, "build_autoload_pth": build_autoload_pth})
