"""The `occ-hf` command line: one entry point, one subcommand per step.

```bash
occ-hf demo                                   # the main job on its built-in default
occ-hf synth-obman data/obman --n 64 --split test --seed 0
occ-hf synth-obman data/obman --split test --ids_from ../shared/seed/obman_view_test_all.txt --num_proc 2
occ-hf obman-summary data/obman --split test --on_unknown_class skip
occ-hf views fetch --ids_from ../shared/seed/obman_view_test_all.txt --out views/test
occ-hf views render --obman_root data/obman --out views/test --num_orbit_views 3
occ-hf env                                    # versions and optional extras, for bug reports
```

Each subcommand is parsed from its config dataclass (`HfArgumentParser`, so `--ids_from` and `--ids-from` both
work); heavy imports happen inside the subcommand so that `--help` stays fast.
"""

import argparse
import json
import platform
import sys
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass


__all__ = ["ObManSummaryConfig", "main"]


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


def _demo(args) -> None:
    from .demo import DemoConfig, run_demo

    run_demo(_config_from(args, DemoConfig))


def _views_fetch(args) -> None:
    from .views.fetch import FetchViewsConfig, fetch_views_main

    fetch_views_main(_config_from(args, FetchViewsConfig))


def _views_render(args) -> None:
    from .views.render import RenderViewsConfig, render_views_main

    render_views_main(_config_from(args, RenderViewsConfig))


def _env(args) -> None:
    import torch

    from . import __version__
    from .import_utils import is_flash_attn_available, is_pyrender_available, is_pytorch3d_available, package_version

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
    }
    for key, value in report.items():
        print(f"- {key}: {value}")


def make_parser() -> argparse.ArgumentParser:
    """The `occ-hf` parser with its subcommands."""
    from transformers import HfArgumentParser

    from .demo import DemoConfig
    from .obman.synth import SynthObManConfig
    from .views.fetch import FetchViewsConfig
    from .views.render import RenderViewsConfig

    parser = argparse.ArgumentParser(prog="occ-hf", description="OCC-MLLM-CoT in the Hugging Face ecosystem.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=HfArgumentParser)
    commands = (
        ("demo", DemoConfig, _demo, "Run the main job on its built-in default."),
        ("synth-obman", SynthObManConfig, _synth_obman, "Write an ObMan-format split of generated samples."),
        ("obman-summary", ObManSummaryConfig, _obman_summary, "Read an ObMan split and summarise it."),
        (
            "views",
            (
                ("fetch", FetchViewsConfig, _views_fetch, "Download precomputed 3D views (resume, retries, checks)."),
                ("render", RenderViewsConfig, _views_render, "Render 3D views from meshes, batched, CPU or GPU."),
            ),
            None,
            "Fetch or render the 3D views of samples.",
        ),
    )
    _add_commands(subparsers, commands)
    env = subparsers.add_parser("env", help="Print versions and optional extras.", dataclass_types=[])
    env.set_defaults(handler=_env)
    return parser


def _add_commands(subparsers, commands) -> None:
    """Adds `(name, config_class, handler, help)` subcommands; a tuple of such entries in place of the config
    class makes a group (`occ-hf views fetch ...`)."""
    for name, config_class, handler, help_text in commands:
        if isinstance(config_class, tuple):
            group = subparsers.add_parser(name, help=help_text, description=help_text, dataclass_types=[])
            parser_class = type(group)
            _add_commands(
                group.add_subparsers(dest=f"{name}_command", required=True, parser_class=parser_class), config_class
            )
            continue
        positional, options = _option_fields(config_class)
        subparser = subparsers.add_parser(name, help=help_text, description=help_text, dataclass_types=[options])
        if positional is not None:
            subparser.add_argument(positional.name, help=positional.metadata.get("help"))
        subparser.set_defaults(handler=handler)


def _option_fields(config_class) -> tuple[Field | None, type]:
    """Splits a config into its positional field (a first field without default) and a dataclass of the rest."""
    first = fields(config_class)[0]
    if first.default is not MISSING or first.default_factory is not MISSING:
        return None, config_class
    rest = [
        (f.name, f.type, field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))
        for f in fields(config_class)[1:]
    ]
    return first, make_dataclass(f"{config_class.__name__}Options", rest)


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
