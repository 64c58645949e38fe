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
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass


__all__ = ["ObManSummaryConfig", "main", "run"]


@dataclass
class ObManSummaryConfig:
    r"""
    Configuration of `occ-hf obman-summary ROOT`.

    Parameters:
        root (`str`): ObMan root holding `train/`, `val/`, `test/`.
        split (`str`, *optional*, defaults to `"test"`): Which split to read.
        shapenet_root (`str`, *optional*): ShapeNetCore.v2 root, to check that every mesh is there.
        on_unknown_class (`str`, *optional*, defaults to `"error"`): `error` or `skip` (counted) for non-OCC classes.
        on_bad_sample (`str`, *optional*, defaults to `"error"`): `error` or `skip` (counted) for unreadable files.
    """

    root: str = field(metadata={"help": "ObMan root holding train/, val/, test/."})
    split: str = field(default="test", metadata={"help": "Which split to read."})
    shapenet_root: str | None = field(default=None, metadata={"help": "ShapeNetCore.v2 root (checks meshes)."})
    on_unknown_class: str = field(default="error", metadata={"help": "error or skip (counted) for other classes."})
    on_bad_sample: str = field(default="error", metadata={"help": "error or skip (counted) for unreadable files."})


def _config_from(args: argparse.Namespace, config_class):
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class)})


def _synth_obman(args) -> None:
    from .obman import read_id_list
    from .obman.synth import SynthObManConfig, generate_obman_split

    config = _config_from(args, SynthObManConfig)
    ids, classes = read_id_list(config.ids_from) if config.ids_from else (None, None)
    summary = generate_obman_split(
        config.output_dir,
        n=config.n,
        seed=config.seed,
        split=config.split,
        ids=ids,
        classes=classes,
        occlusion_range=(config.min_occlusion, config.max_occlusion),
        shapenet_root=config.shapenet_root,
        batch_size=config.batch_size,
        num_proc=config.num_proc,
        overwrite=config.overwrite,
    )
    print(json.dumps(summary.to_dict(), indent=2))


def _obman_summary(args) -> None:
    from .obman import ObManSplit, format_summary, summarize_split

    config = _config_from(args, ObManSummaryConfig)
    split = ObManSplit(
        config.root,
        config.split,
        shapenet_root=config.shapenet_root,
        on_unknown_class=config.on_unknown_class,
        on_bad_sample=config.on_bad_sample,
    )
    print(format_summary(summarize_split(split)))


def _build_dataset(args) -> None:
    from .data.build import BuildDatasetConfig, build_dataset

    print(f"Wrote {build_dataset(_config_from(args, BuildDatasetConfig))}")


def _seed_import(args) -> None:
    from .data.seed_formats import SeedImportConfig, seed_import

    print(f"Wrote {seed_import(_config_from(args, SeedImportConfig))}")


def _seed_export(args) -> None:
    from .data.seed_formats import SeedExportConfig, seed_export

    print(f"Wrote {seed_export(_config_from(args, SeedExportConfig))}")


def _convert_checkpoint(args) -> None:
    from .models.occ_internvl.convert_occ_internvl import ConvertCheckpointConfig, convert_checkpoint

    config = _config_from(args, ConvertCheckpointConfig)
    summary = convert_checkpoint(
        config.src,
        config.output_dir,
        dtype=config.dtype,
        image_token_id=config.image_token_id,
        tokenizer=config.tokenizer,
        overwrite=config.overwrite,
    )
    print(json.dumps(summary.to_dict(), indent=2))


def _demo(args) -> None:
    from .demo import DemoConfig, run_demo

    run_demo(_config_from(args, DemoConfig))


def _init_tiny(args) -> None:
    from .models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

    config = _config_from(args, TinyOccInternVLConfig)
    model, _ = init_tiny_checkpoint(config)
    print(f"Wrote a {model.num_parameters():,}-parameter OccInternVL checkpoint to {config.output_dir}")


def _eval(args) -> None:
    from .eval import EvalConfig, format_report_markdown, run_eval

    report, paths = run_eval(_config_from(args, EvalConfig))
    print(format_report_markdown(report))
    print(f"Wrote {', '.join(str(path) for path in paths.values())}")


def _train(args) -> None:
    from importlib import import_module

    # Each stage is a script in TRL's shape with its own TrlParser (`--config x.yaml`, flags override the YAML), so
    # everything after the stage name goes to that parser.
    stage = import_module(f".train.{args.stage}", __package__)
    parser = stage.make_parser(prog=f"occ-hf train {args.stage}")
    stage.main(*parser.parse_args_and_config(args.stage_args))


def _push(args) -> None:
    from .push import PushConfig, push_model

    config = _config_from(args, PushConfig)
    url = push_model(
        config.model_dir,
        config.repo_id,
        eval_report=config.eval_report,
        private=config.private,
        revision=config.revision,
        commit_message=config.commit_message,
    )
    print(f"Pushed {config.model_dir} with its model card: {url}")


def _views_fetch(args) -> None:
    from .views.fetch import FetchViewsConfig, fetch_views_main

    fetch_views_main(_config_from(args, FetchViewsConfig))


def _views_render(args) -> None:
    from .views.render import RenderViewsConfig, render_views_main

    render_views_main(_config_from(args, RenderViewsConfig))


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
    ("obman-summary", "occ_hf.cli:ObManSummaryConfig", _obman_summary, "Read an ObMan split and summarise it."),
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


def make_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `occ-hf` parser. Only the subcommand named in `argv` gets its options (and imports its config)."""
    argv = sys.argv[1:] if argv is None else argv
    words = [word for word in argv if not word.startswith("-")][:2]
    chosen = next((name for name, *_ in COMMANDS if name.split() == words[: len(name.split())]), None)
    if chosen is not None:
        from transformers import HfArgumentParser

        parser_class, extra = HfArgumentParser, {"dataclass_types": []}
    else:
        parser_class, extra = argparse.ArgumentParser, {}

    parser = argparse.ArgumentParser(prog="occ-hf", description="OCC-MLLM-CoT in the Hugging Face ecosystem.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=parser_class)
    groups = {}
    for name, config_path, handler, help_text in COMMANDS:
        parent, leaf = subparsers, name
        if " " in name:  # "seed import": a subcommand of the group "seed"
            group, leaf = name.split(" ", 1)
            if group not in groups:
                group_parser = subparsers.add_parser(group, help=f"{group} subcommands", **extra)
                groups[group] = group_parser.add_subparsers(
                    dest=f"{group}_command", required=True, parser_class=parser_class
                )
            parent = groups[group]
        if name != chosen:
            parent.add_parser(leaf, help=help_text, **extra)
            continue
        module_name, class_name = config_path.split(":")
        positionals, options = _option_fields(getattr(importlib.import_module(module_name), class_name))
        subparser = parent.add_parser(leaf, help=help_text, description=help_text, dataclass_types=[options])
        for positional in positionals:
            subparser.add_argument(positional.name, help=positional.metadata.get("help"))
        subparser.set_defaults(handler=handler)
    train = subparsers.add_parser(
        "train", help="Train a stage on TRL: sft, mpo or sc (--config recipe.yaml).", add_help=False, **extra
    )
    train.add_argument(
        "stage", choices=("sft", "mpo", "sc"), help="The stage; `occ-hf train sft --help` lists its options."
    )
    train.add_argument("stage_args", nargs=argparse.REMAINDER, help="--config recipe.yaml and flags overriding it.")
    train.set_defaults(handler=_train)
    env = subparsers.add_parser("env", help="Print versions and optional extras.", **extra)
    env.set_defaults(handler=_env)
    return parser


def _option_fields(config_class) -> tuple[list[Field], type]:
    """Splits a config into its positional fields (the leading fields without default) and a dataclass of the rest."""
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
    args = make_parser(argv).parse_args(argv)
    args.handler(args)


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
