"""The `occ-hf` command line: one entry point, one subcommand per step.

```bash
occ-hf demo                                   # the main job on its built-in default
occ-hf synth-obman data/obman --n 64 --split test --seed 0
occ-hf synth-obman data/obman --split test --ids_from ../shared/seed/obman_view_test_all.txt --num_proc 2
occ-hf obman-summary data/obman --split test --on_unknown_class skip
occ-hf build-dataset --obman-root data/obman --config reflection,preference --out out/ds [--push-to-hub org/x]
occ-hf seed import ../shared/seed/train_Q1_10140.head20.jsonl --obman_root data/obman --out out/sft1
occ-hf seed export out/sft1 --out sft1.jsonl  # byte-identical to the imported file
occ-hf init-tiny runs/tiny                    # a tiny random OccInternVL checkpoint, built offline
occ-hf eval --predictions runs/predictions.jsonl --references data/obman --split test --output_dir runs/eval
occ-hf eval --model runs/tiny --dataset occ-obman-cot --data_dir data/obman --views_dir data/views
occ-hf train sft --config recipes/tiny/sft_reflection.yaml --max_steps 10   # a stage on TRL; flags override YAML
occ-hf train sc --config recipes/tiny/sc.yaml --max_steps 4    # self-correction: two attempts, online RL (GRPO)
occ-hf push runs/tiny-sft-reflection org/occ-internvl-tiny   # a trained folder, with its model card, to the Hub
occ-hf convert-checkpoint InternVL2-2B.tar.gz occ-internvl-2b --dtype bfloat16
occ-hf views fetch --ids_from ../shared/seed/obman_view_test_all.txt --out views/test
occ-hf views render --obman_root data/obman --out views/test --num_orbit_views 3
occ-hf env                                    # versions and optional extras, for bug reports
```

Each subcommand is parsed from its config dataclass (`HfArgumentParser`, so `--ids_from` and `--ids-from` both
work); heavy imports happen inside the subcommand so that `--help` stays fast.

`occ-hf` ([`run`]) reports a bad input (a missing file, a corrupt image or pickle, a wrong option: the errors whose
messages name the file and the fix) in one line on stderr and exits with status 1; `OCC_HF_TRACEBACK=1` shows the
traceback too. Anything else (a bug) keeps its traceback. [`main`] raises, for use from Python.
"""

import argparse
import importlib
import json
import os
import platform
import sys
from dataclasses import MISSING, Field, field, fields, make_dataclass


__all__ = ["main", "run"]


def _synth_obman(config) -> None:
    from .obman.synth import run_synth_obman

    print(json.dumps(run_synth_obman(config).to_dict(), indent=2))


def _obman_summary(config) -> None:
    from .obman.summary import format_summary, run_obman_summary

    print(format_summary(run_obman_summary(config)))


def _build_dataset(config) -> None:
    from .data.build import build_dataset

    print(f"Wrote {build_dataset(config)}")


def _seed_import(config) -> None:
    from .data.seed_formats import seed_import

    print(f"Wrote {seed_import(config)}")


def _seed_export(config) -> None:
    from .data.seed_formats import seed_export

    print(f"Wrote {seed_export(config)}")


def _convert_checkpoint(config) -> None:
    from .models.occ_internvl.convert_occ_internvl import run_convert_checkpoint

    print(json.dumps(run_convert_checkpoint(config).to_dict(), indent=2))


def _demo(config) -> None:
    from .demo import run_demo

    run_demo(config)


def _init_tiny(config) -> None:
    from .models.occ_internvl.tiny_occ_internvl import init_tiny_checkpoint

    model, _ = init_tiny_checkpoint(config)
    print(f"Wrote a {model.num_parameters():,}-parameter OccInternVL checkpoint to {config.output_dir}")


def _eval(config) -> None:
    from .eval import format_report_markdown, run_eval

    report, paths = run_eval(config)
    if not paths:  # a process of a sharded run other than the main one, which writes and prints the report
        return
    print(format_report_markdown(report))
    print(f"Wrote {', '.join(str(path) for path in paths.values())}")


def _train(args) -> None:
    from importlib import import_module

    # Each stage is a script in TRL's shape with its own TrlParser (`--config x.yaml`, flags override the YAML), so
    # everything after the stage name goes to that parser.
    stage = import_module(f".train.{args.stage}", __package__)
    parser = stage.make_parser(prog=f"occ-hf train {args.stage}")
    stage.main(*parser.parse_args_and_config(args.stage_args))


def _push(config) -> None:
    from .push import run_push

    print(f"Pushed {config.model_dir} with its model card: {run_push(config)}")


def _views_fetch(config) -> None:
    from .views.fetch import fetch_views_main

    fetch_views_main(config)


def _views_render(config) -> None:
    from .views.render import render_views_main

    render_views_main(config)


def _env(args) -> None:
    import torch

    from .import_utils import is_flash_attn_available, is_pyrender_available, is_pytorch3d_available, package_version
    from .version import __version__

    report = {
        "occ-hf": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: package_version(name) for name in ("torch", "torchvision", "transformers", "datasets", "trl")},
        **{name: package_version(name) for name in ("peft", "accelerate", "huggingface_hub", "evaluate", "trimesh")},
        "cuda available": torch.cuda.is_available(),
        "pytorch3d (extra render)": is_pytorch3d_available(),
        "pyrender (extra gl)": is_pyrender_available(),
        "flash-attn (extra flash)": is_flash_attn_available(),
        # Converting InternLM2 checkpoints reads their sentencepiece tokenizer.model with protobuf.
        "protobuf (extra convert)": package_version("protobuf"),
        "sentencepiece": package_version("sentencepiece"),
    }
    for key, value in report.items():
        print(f"- {key}: {value}")


# Each subcommand: name ("group name" for a subcommand of a group), its config class as "module:Class" (imported only
# when that subcommand runs, so that `occ-hf --help` stays fast), its handler and its help.
COMMANDS = (
    ("demo", "occ_hf.demo:DemoConfig", _demo, "Run the main job on its built-in default."),
    ("synth-obman", "occ_hf.obman.synth:SynthObManConfig", _synth_obman, "Write an ObMan-format split of samples."),
    (
        "obman-summary",
        "occ_hf.obman.summary:ObManSummaryConfig",
        _obman_summary,
        "Read an ObMan split and summarise it.",
    ),
    (
        "build-dataset",
        "occ_hf.data.build:BuildDatasetConfig",
        _build_dataset,
        "Build occ-obman-cot to parquet (+ Hub).",
    ),
    ("seed import", "occ_hf.data.seed_formats:SeedImportConfig", _seed_import, "Turn a seed jsonl into a dataset."),
    ("seed export", "occ_hf.data.seed_formats:SeedExportConfig", _seed_export, "Write rows back as a seed jsonl."),
    (
        "init-tiny",
        "occ_hf.models.occ_internvl.tiny_occ_internvl:TinyOccInternVLConfig",
        _init_tiny,
        "Write a tiny random OccInternVL checkpoint (tests, demo).",
    ),
    (
        "eval",
        "occ_hf.eval.run_eval:EvalConfig",
        _eval,
        "Score a model or predictions: Description, Reflection, Decision.",
    ),
    (
        "convert-checkpoint",
        "occ_hf.models.occ_internvl.convert_occ_internvl:ConvertCheckpointConfig",
        _convert_checkpoint,
        "Convert an InternVL checkpoint.",
    ),
    ("push", "occ_hf.push:PushConfig", _push, "Push a trained model folder and its model card to the Hub."),
    ("views fetch", "occ_hf.views.fetch:FetchViewsConfig", _views_fetch, "Download 3D views (resume, retries)."),
    ("views render", "occ_hf.views.render:RenderViewsConfig", _views_render, "Render 3D views from meshes."),
)


def make_parser() -> argparse.ArgumentParser:
    """
    The `occ-hf` parser: it picks the subcommand and nothing else (so `occ-hf --help` imports no config). The
    subcommand's own options are parsed by [`make_command_parser`], as `occ-hf train STAGE` hands its to the stage.
    """
    parser = argparse.ArgumentParser(prog="occ-hf", description="OCC-MLLM-CoT in the Hugging Face ecosystem.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    groups = {}
    for name, config_path, handler, help_text in COMMANDS:
        parent, leaf = subparsers, name
        if " " in name:  # "seed import": a subcommand of the group "seed"
            group, leaf = name.split(" ", 1)
            if group not in groups:
                group_parser = subparsers.add_parser(group, help=f"{group} subcommands")
                groups[group] = group_parser.add_subparsers(dest=f"{group}_command", required=True)
            parent = groups[group]
        # No options of its own, not even --help: everything after the name is for the command's parser.
        subparser = parent.add_parser(leaf, help=help_text, add_help=False)
        subparser.set_defaults(handler=handler, name=name, config_path=config_path, help_text=help_text)
    train = subparsers.add_parser(
        "train", help="Train a stage on TRL: sft, mpo or sc (--config recipe.yaml).", add_help=False
    )
    train.add_argument(
        "stage", choices=("sft", "mpo", "sc"), help="The stage; `occ-hf train sft --help` lists its options."
    )
    train.add_argument("stage_args", nargs=argparse.REMAINDER, help="--config recipe.yaml and flags overriding it.")
    train.set_defaults(handler=_train)
    env = subparsers.add_parser("env", help="Print versions and optional extras.")
    env.set_defaults(handler=_env)
    return parser


def make_command_parser(name: str, config_class: type, description: str | None = None):
    """
    The `HfArgumentParser` of `occ-hf NAME`: `config_class`'s fields as options, its leading fields without a
    default as positional arguments (`occ-hf push MODEL_DIR REPO_ID`).
    """
    from transformers import HfArgumentParser

    positionals, options = _option_fields(config_class)
    parser = HfArgumentParser(options, prog=f"occ-hf {name}", description=description)
    for positional in positionals:
        parser.add_argument(positional.name, help=positional.metadata.get("help"))
    return parser


def _option_fields(config_class) -> tuple[list[Field], type]:
    """Splits a config into its positional fields (the leading fields without default) and a dataclass of the rest
    (`HfArgumentParser` makes every field of a dataclass an option)."""
    all_fields = fields(config_class)
    positionals = []
    for f in all_fields:
        if f.default is not MISSING or f.default_factory is not MISSING:
            break
        positionals.append(f)
    if not positionals:
        return [], config_class
    rest = [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))
        for f in all_fields[len(positionals) :]
    ]
    return positionals, make_dataclass(f"{config_class.__name__}Options", rest)


def main(argv: list[str] | None = None) -> None:
    """Parses `argv` (default: `sys.argv[1:]`) and runs the subcommand; errors propagate."""
    parser = make_parser()
    args, rest = parser.parse_known_args(argv)
    if not hasattr(args, "config_path"):  # train (whose stage parses the rest) and env
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.handler(args)
        return
    module_name, class_name = args.config_path.split(":")
    config_class = getattr(importlib.import_module(module_name), class_name)
    namespace = make_command_parser(args.name, config_class, args.help_text).parse_args(rest)
    args.handler(config_class(**{f.name: getattr(namespace, f.name) for f in fields(config_class)}))


# What a user's input can cause, each raised with a message that names the file or option and the fix: every occ-hf
# error is a ValueError (ObManFormatError, CheckpointConversionError, ViewImageError, ...), a missing or unreadable
# file an OSError, a missing extra an ImportError.
_INPUT_ERRORS = (ValueError, OSError, ImportError)


def run(argv: list[str] | None = None) -> int:
    """
    The `occ-hf` console command: [`main`], with bad input reported in one line instead of a traceback.

    Returns:
        `int`: the exit status: 0, or 1 after a bad-input error (printed to stderr as `occ-hf: error: ...`).
    """
    try:
        main(argv)
    except Exception as error:
        cause = _input_error(error)
        if cause is None or os.environ.get("OCC_HF_TRACEBACK", "0") not in ("", "0"):
            raise
        print(f"occ-hf: error: {type(cause).__name__}: {cause}", file=sys.stderr)
        print("(OCC_HF_TRACEBACK=1 shows where it was raised.)", file=sys.stderr)
        return 1
    return 0


def _input_error(error: BaseException) -> BaseException | None:
    """The bad-input error behind `error`, or `None` for anything else. `datasets` wraps what a builder raises in a
    DatasetGenerationError, so its cause is what the user needs to read."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, _INPUT_ERRORS):
            return error
        if type(error).__name__ != "DatasetGenerationError":
            return None
        error = error.__cause__
    return None


if __name__ == "__main__":
    sys.exit(run())
