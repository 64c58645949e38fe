"""`StageParser`: TRL's `TrlParser` (`--config recipe.yaml`, flags win over the YAML), with a wrong recipe or flag
reported in one line that names the recipe, the option and the fix, before anything loads.

TRL reads the recipe with `yaml.safe_load` and sets its values as the parser's defaults: a YAML syntax error is a
parser traceback, a value of the wrong type (`learning_rate: fast`) ends in argparse's full usage text with exit status
2, and a list where one number is expected (`per_device_train_batch_size: [4, 8]`) passes the parser and fails only
after the model has loaded; a misspelt key is named without its file. Here each is a `ValueError` (one line from
`occ-hf`, exit status 1).

```python
from occ_hf.train.parser import StageParser

parser = StageParser((OccScriptArguments, OccSFTConfig, ModelConfig, DatasetMixtureConfig), prog="occ-hf train sft")
script_args, training_args, model_args, dataset_args = parser.parse_args_and_config(["--config", "recipe.yaml"])
```
"""

import difflib
import os

import yaml
from trl import TrlParser


__all__ = ["StageParser"]

_NUMBER_TYPES = {int: "an integer", float: "a number"}


class StageParser(TrlParser):
    """[`~trl.TrlParser`] that checks the recipe's YAML and value types first and raises `ValueError` for a wrong
    option instead of printing the usage and exiting."""

    config_path: str | None = None

    def parse_args_and_config(self, args=None, *more, **kwargs):
        args = list(args) if args is not None else None
        if args is not None and "--config" in args:
            index = args.index("--config")
            if index + 1 >= len(args):
                raise ValueError(f"{self.prog}: --config needs a recipe path (a YAML file).")
            self.config_path = args[index + 1]
            self._check_recipe(self.config_path)
        return super().parse_args_and_config(args, *more, **kwargs)

    def error(self, message: str):
        where = f" (from the command line or {self.config_path})" if self.config_path else ""
        raise ValueError(f"{self.prog}: {message}{where}; `{self.prog} --help` lists the options and their types.")

    def _check_recipe(self, path: str) -> None:
        if not os.path.isfile(path):
            what = "is a folder" if os.path.isdir(path) else "not found"
            raise FileNotFoundError(f"{path}: recipe {what}; give the path of a YAML recipe (see recipes/).")
        try:
            with open(path, encoding="utf-8") as handle:
                recipe = yaml.safe_load(handle)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not UTF-8 text ({error.reason}); a recipe is a YAML file.") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ValueError(f"{path}: not valid YAML{line} ({problem}); fix the recipe.") from None
        if not isinstance(recipe, dict):
            raise ValueError(f"{path}: a recipe is a YAML mapping of option: value, not a {type(recipe).__name__}.")
        options = {action.dest: action for action in self._actions}
        unknown = [key for key in recipe if key not in options and key != "env"]  # TRL reads `env` itself
        if unknown:
            names = []
            for key in unknown:
                hint = difflib.get_close_matches(key, options, n=1)
                names.append(f"{key} (did you mean {hint[0]}?)" if hint else key)
            names = ", ".join(names)
            raise ValueError(f"{path}: unknown option {names}; `{self.prog} --help` lists the options.")
        for key, value in recipe.items():
            if key in options and options[key].type in _NUMBER_TYPES:
                _check_number(path, options[key], value)


def _check_number(path: str, action, value) -> None:
    """A recipe value for a numeric option: a number (or a string that parses as one); a list only where the option
    takes several."""
    expected = _NUMBER_TYPES[action.type]
    takes_many = action.nargs not in (None, "?")
    values = value if takes_many and isinstance(value, list) else [value]
    for item in values:
        if item is None and action.default is None:
            continue
        ok = not isinstance(item, (bool, list, dict))
        if ok:
            try:
                number = action.type(item) if isinstance(item, str) else item
                ok = isinstance(number, int) if action.type is int else isinstance(number, (int, float))
            except (TypeError, ValueError):
                ok = False
        if not ok:
            many = " (or a list of them)" if takes_many else ""
            raise ValueError(f"{path}: {action.dest} is {value!r}; expected {expected}{many}. Fix the recipe.")
