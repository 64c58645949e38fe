"""The model card of a trained stage, rendered from `occ_hf/model_cards/model_card.md` (linked as `model_cards/`).

A stage's trainer is TRL's with [`OccModelCardMixin`] in front (`stage_trainer(SFTTrainer)`, in `stage.py`): wherever
TRL or transformers would write their card into `output_dir/README.md` (at each checkpoint, in `Trainer.push_to_hub`,
which `save_model` calls when `push_to_hub` is set), ours is written instead, so every push carries it. The card needs
a stage name and the stage's config dataclass; the script's dataset, model and LoRA arguments add to it when given:

```python
from occ_hf.train.model_card import CardInputs
from occ_hf.train.stage import stage_trainer

trainer = stage_trainer(SFTTrainer)(model=model, args=training_args, ..., model_card=CardInputs("sft", script_args))
trainer.train()
trainer.save_model()  # with push_to_hub: saves, writes README.md and pushes the folder (model, processor, card)
```

What the card says is kept beside it in `output_dir/occ_hf_card.json` (a [`ModelCardInfo`]), so `occ-hf push` can
publish a folder later and put an evaluation run's figures on the card (`output_dir/eval/report.json`, or a path).
"""

import dataclasses
import enum
import json
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


__all__ = [
    "CARD_INFO_NAME",
    "CardInputs",
    "ModelCardInfo",
    "OccModelCardMixin",
    "add_eval_to_card",
    "read_eval_report",
    "render_model_card",
    "save_model_card",
    "training_hyperparameters",
]

CARD_INFO_NAME = "occ_hf_card.json"
DEFAULT_EVAL_REPORT = Path("eval") / "report.json"

# What each stage does, for the card's first lines. A stage not listed here is described by its config class's
# docstring, so a new stage needs no change in this module.
STAGE_DESCRIPTIONS = {
    "sft": (
        "supervised fine-tuning on `occ-obman-cot` conversations (SFT1: the class question; SFT2: the class question, "
        "then the clarity question), with the loss on the answers only."
    ),
    "mpo": (
        "Mixed Preference Optimization on the clarity preference pairs: 0.8 x sigmoid (DPO) + 0.2 x bco_pair + "
        "1.0 x sft on the chosen answer, against the frozen starting checkpoint."
    ),
    "sc": (
        "self-correction (SCoRe-style): two attempts at the class question, the second asked to check again, "
        "rewarded for an exact answer (else by string similarity) and for improving on the first attempt."
    ),
}

# Fields of `TrainingArguments` that shape training; the card lists them when they differ from transformers'
# defaults (the first ones always). The rest of `TrainingArguments` is run plumbing (paths, logging, saving, Hub).
_ALWAYS_SHOWN = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "seed",
)
_SHOWN_IF_CHANGED = ("optim", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "label_smoothing_factor")
# Of the fields that TRL's configs (and ours) add, these are shown always; the others when they differ from TRL's.
_STAGE_FIELDS = ("max_length", "assistant_only_loss", "beta", "loss_type", "loss_weights")
# TRL config fields that are plumbing, not hyper-parameters.
_NOT_HYPERPARAMETERS = {
    "model_init_kwargs",
    "ref_model_init_kwargs",
    "dataset_num_proc",
    "dataset_kwargs",
    "dataset_text_field",
    "generate_during_eval",
    "precompute_ref_log_probs",
    "precompute_ref_batch_size",
}
_MAX_LOSS_ROWS = 10
_METRIC_TITLES = {"description": "Description", "reflection": "Reflection", "decision": "Decision"}


@dataclass
class CardInputs:
    r"""
    What a stage's script knows beside its trainer, for the model card.

    Parameters:
        stage (`str`):
            The stage name (`sft`, `mpo`, `sc`, ...).
        script_args ([`OccScriptArguments`], *optional*):
            The dataset (`dataset_name`, `dataset_config`), `freeze_vision`, and the card's `card_base_model`,
            `card_eval_report` and `card_license`.
        model_args ([`~trl.ModelConfig`], *optional*):
            `model_name_or_path` (the base model) and the LoRA settings.
        dataset_args ([`~trl.DatasetMixtureConfig`], *optional*):
            The recipe's `datasets:` list, which wins over `script_args.dataset_name`.
    """

    stage: str
    script_args: Any = None
    model_args: Any = None
    dataset_args: Any = None


@dataclass
class ModelCardInfo:
    r"""
    Everything the model card says, as plain data (saved as `occ_hf_card.json` beside the card).

    Parameters:
        stage (`str`): The stage name.
        stage_description (`str`): One sentence on what the stage trains.
        trainer_name (`str`): TRL's trainer class (`SFTTrainer`, `DPOTrainer`, ...).
        config_class (`str`): The stage's config dataclass (`OccSFTConfig`, ...).
        hyperparameters (`dict`): Name to value, see [`training_hyperparameters`].
        model_name (`str`): The card's title.
        repo_id (`str`, *optional*): The Hub repository it was pushed to; `None` until pushed.
        base_model (`str`, *optional*): Hub id of the starting checkpoint (the card's `base_model`).
        base_model_path (`str`, *optional*): `model_name_or_path` as the recipe gave it.
        license (`str`, *optional*): The card's license id: `card_license`, else the starting checkpoint's.
        datasets (`list[dict]`): `path`, `name` (config), `split`, `data_dir` of each training dataset.
        peft (`dict`, *optional*): `r`, `alpha`, `target_modules` when LoRA adapters were trained.
        freeze_vision (`bool`, *optional*): Whether the vision tower stayed frozen.
        losses (`list[dict]`): Logged training losses (`step`, `loss`), at most 10 rows spread over the run.
        train_loss (`float`, *optional*): The mean training loss that the trainer reports at the end.
        global_step (`int`): Optimizer steps run.
        eval (`dict`, *optional*): `source`, `num_images` and `metrics` (per stage: accuracy, correct, total) of an
            `occ-hf eval` report.
        tags (`list[str]`): The card's tags.
        citations (`list[str]`): BibTeX entries: the paper, then the trainer's method if TRL names one.
        versions (`dict`): Library versions of the run.
    """

    stage: str
    stage_description: str
    trainer_name: str
    config_class: str
    hyperparameters: dict[str, Any]
    model_name: str
    repo_id: str | None = None
    base_model: str | None = None
    base_model_path: str | None = None
    license: str | None = None
    datasets: list[dict] = field(default_factory=list)
    peft: dict | None = None
    freeze_vision: bool | None = None
    losses: list[dict] = field(default_factory=list)
    train_loss: float | None = None
    global_step: int = 0
    eval: dict | None = None
    tags: list[str] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_trainer(cls, trainer, inputs: CardInputs) -> "ModelCardInfo":
        """
        Collects the card's content from a TRL trainer (its config, log history, model) and the script's arguments.

        Args:
            trainer ([`~transformers.Trainer`]): The stage's trainer, after (or during) training.
            inputs ([`CardInputs`]): The stage name and the script's arguments.
        """
        args, script_args, model_args = trainer.args, inputs.script_args, inputs.model_args
        model_name_or_path = getattr(model_args, "model_name_or_path", None) or trainer.model.config._name_or_path
        peft = None
        if getattr(model_args, "use_peft", False):
            peft = {"r": model_args.lora_r, "alpha": model_args.lora_alpha}
            peft["target_modules"] = _plain(_lora_targets(trainer.model))
        repo_id = trainer.hub_model_id if args.push_to_hub else None
        losses, train_loss = _losses(trainer.state.log_history)
        eval_report = getattr(script_args, "card_eval_report", None)
        info = cls(
            stage=inputs.stage,
            stage_description=_stage_description(inputs.stage, args),
            trainer_name=_trl_trainer_name(trainer),
            config_class=type(args).__name__,
            hyperparameters=training_hyperparameters(args),
            model_name=(repo_id or args.hub_model_id or Path(args.output_dir).name).split("/")[-1],
            repo_id=repo_id,
            base_model=_hub_base_model(model_name_or_path, getattr(script_args, "card_base_model", None)),
            base_model_path=model_name_or_path,
            license=getattr(script_args, "card_license", None) or _base_license(model_name_or_path),
            datasets=_datasets(script_args, inputs.dataset_args),
            peft=peft,
            freeze_vision=getattr(script_args, "freeze_vision", None),
            losses=losses,
            train_loss=train_loss,
            global_step=trainer.state.global_step,
            tags=_tags(inputs.stage, getattr(trainer, "_tag_names", [])),
            citations=_citations(trainer),
            versions=_versions(peft is not None),
        )
        info.set_eval_report(eval_report, Path(args.output_dir))
        return info

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ModelCardInfo":
        """Reads `folder/occ_hf_card.json`, which training writes beside the card."""
        path = Path(folder) / CARD_INFO_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {folder} was not written by `occ-hf train` (which saves it with the model), so "
                "there is nothing to render the card from. Train with occ-hf, or upload the folder with `hf upload`."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(
                f"{path}: not a readable occ-hf card record ({error}); retrain or fix the file."
            ) from None

    def set_eval_report(self, eval_report: str | os.PathLike | None, model_dir: Path) -> None:
        """Takes the figures of `eval_report`, or of `model_dir/eval/report.json` when that exists."""
        if eval_report is None and (model_dir / DEFAULT_EVAL_REPORT).is_file():
            eval_report = model_dir / DEFAULT_EVAL_REPORT
        if eval_report is not None:
            self.eval = read_eval_report(eval_report)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


def training_hyperparameters(args) -> dict[str, Any]:
    """
    The hyper-parameters of a stage's config, for the card.

    Always: the optimisation basics (`_ALWAYS_SHOWN`; `num_train_epochs` or `max_steps`, whichever bounds the run),
    the precision, and the stage fields TRL's configs add that define a stage (`max_length`, `beta`, `loss_type`,
    ...). Besides: any other optimiser setting that differs from TRL's default, and any other field of TRL's config
    (or of a subclass: ours, a new stage's) whose value differs from TRL's default or that TRL's config lacks. So a
    new stage's config shows what it sets without being listed here.

    Args:
        args ([`~transformers.TrainingArguments`]): The stage's config (an `OccSFTConfig`, `OccMPOConfig`, ...).

    Returns:
        `dict[str, Any]`: name to a YAML-safe value.
    """
    from transformers import TrainingArguments

    values = {}
    for name in _ALWAYS_SHOWN:
        if name == "num_train_epochs" and args.max_steps > 0 or name == "max_steps" and args.max_steps <= 0:
            continue
        values[name] = _plain(getattr(args, name))
    values["precision"] = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    # The baseline is the nearest config class of TRL or transformers (SFTConfig, DPOConfig, ...) as built with
    # nothing given: an instance, not the field defaults, since __post_init__ resolves sentinels such as "auto".
    trl_class = next(c for c in type(args).__mro__ if c.__module__.split(".")[0] in ("trl", "transformers"))
    baseline = _baseline(trl_class, args)
    for name in _SHOWN_IF_CHANGED:
        if _plain(getattr(args, name)) != baseline.get(name):
            values[name] = _plain(getattr(args, name))
    training_arguments_fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for f in dataclasses.fields(args):
        if f.name in training_arguments_fields or f.name in _NOT_HYPERPARAMETERS or f.name in values:
            continue
        value = _plain(getattr(args, f.name))
        # A field that TRL's config lacks (one of ours, or a new stage's) is shown whenever it is set.
        changed = value != baseline[f.name] if f.name in baseline else value is not None
        if f.name in _STAGE_FIELDS or changed:
            values[f.name] = value
    return values


def read_eval_report(path: str | os.PathLike) -> dict:
    """
    The figures of an `occ-hf eval` report (`report.json`): `source`, `num_images` and `metrics`.

    Args:
        path (`str` or `os.PathLike`): The report.

    Returns:
        `dict`: `{"source", "num_images", "metrics": {stage: {"accuracy", "correct", "total"}}}` for the stages the
        report scored (description, reflection, decision).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation report not found; write one with `occ-hf eval ... --output_dir`.")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error}); give the report.json that `occ-hf eval` writes.") from None
    metrics = report.get("metrics") if isinstance(report, dict) else None
    if not isinstance(metrics, dict) or not set(metrics) & set(_METRIC_TITLES):
        raise ValueError(
            f"{path}: not an occ-hf evaluation report (no description/reflection/decision under 'metrics'); give "
            "the report.json that `occ-hf eval` writes."
        )
    scores = {}
    for stage in _METRIC_TITLES:
        if stage in metrics:
            score = metrics[stage]
            scores[stage] = {key: score.get(key) for key in ("accuracy", "correct", "total")}
    return {"source": str(report.get("source", path)), "num_images": report.get("num_images"), "metrics": scores}


def render_model_card(info: ModelCardInfo):
    """
    Renders the card from `occ_hf/model_cards/model_card.md`.

    Args:
        info ([`ModelCardInfo`]): What the card says.

    Returns:
        [`~huggingface_hub.ModelCard`]: the card; its YAML holds `base_model`, `datasets`, `tags`, `pipeline_tag`,
        `library_name` and, once evaluated, the metrics as `model-index`.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from ..cards import project_url, read_card_template
    from ..version import __version__

    eval_rows, eval_results = [], None
    if info.eval:
        eval_results = []
        for stage, score in info.eval["metrics"].items():
            accuracy = score["accuracy"]
            eval_rows.append(
                {
                    "title": _METRIC_TITLES[stage],
                    "accuracy": "-" if accuracy is None else f"{accuracy:.4f}",
                    "correct": score["correct"],
                    "total": score["total"],
                }
            )
            if accuracy is not None:
                eval_results.append(
                    EvalResult(
                        task_type="image-text-to-text",
                        task_name="Occluded-object recognition",
                        dataset_type="occ-obman-cot",
                        dataset_name="ObMan test (occ-obman-cot)",
                        metric_type="accuracy",
                        metric_name=_METRIC_TITLES[stage],
                        metric_value=accuracy,
                    )
                )
    hub_datasets = [d["path"] for d in info.datasets if not _is_local(d["path"])]
    card_data = ModelCardData(
        model_name=info.model_name,
        base_model=info.base_model,
        license=info.license,
        datasets=hub_datasets or None,
        library_name="peft" if info.peft else "transformers",
        pipeline_tag="image-text-to-text",
        tags=info.tags,
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_str=read_card_template("model_card.md"),
        model_name=info.model_name,
        repo_id=info.repo_id or f"YOUR_NAMESPACE/{info.model_name}",
        stage=info.stage,
        stage_description=info.stage_description,
        trainer_name=info.trainer_name,
        config_class=info.config_class,
        occ_hf_version=__version__,
        occ_hf_url=project_url(),
        base_model=info.base_model,
        base_model_path=info.base_model_path,
        datasets=info.datasets,
        peft=info.peft,
        freeze_vision=info.freeze_vision,
        hyperparameters=info.hyperparameters,
        losses=info.losses,
        train_loss=None if info.train_loss is None else f"{info.train_loss:.4f}",
        global_step=info.global_step,
        eval_metrics=eval_rows,
        eval_source=info.eval["source"] if info.eval else None,
        eval_num_images=info.eval["num_images"] if info.eval else None,
        versions=info.versions,
        citation="\n".join(info.citations),
    )


def save_model_card(info: ModelCardInfo, folder: str | os.PathLike) -> Path:
    """Writes `folder/README.md` (the rendered card) and `folder/occ_hf_card.json`; returns the card's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD_INFO_NAME).write_text(info.to_json(), encoding="utf-8")
    render_model_card(info).save(folder / "README.md")
    return folder / "README.md"


def add_eval_to_card(model_dir: str | os.PathLike, eval_report: str | os.PathLike | None = None) -> Path:
    """
    Puts an evaluation's figures on the card of a folder that `occ-hf train` wrote, and renders the card again.

    Args:
        model_dir (`str` or `os.PathLike`): The trained folder (it holds `occ_hf_card.json`).
        eval_report (`str` or `os.PathLike`, *optional*): An `occ-hf eval` report.json; defaults to
            `model_dir/eval/report.json`, where `occ-hf eval --output_dir MODEL_DIR/eval` writes it.

    Returns:
        `Path`: the card (`model_dir/README.md`).
    """
    model_dir = Path(model_dir)
    info = ModelCardInfo.load(model_dir)
    eval_report = eval_report if eval_report is not None else model_dir / DEFAULT_EVAL_REPORT
    info.eval = read_eval_report(eval_report)
    return save_model_card(info, model_dir)


class OccModelCardMixin:
    r"""
    Puts occ-hf's model card where a TRL trainer would put its own (in front of TRL's trainer in the MRO).

    transformers' `Trainer.push_to_hub` (which `save_model` calls when `push_to_hub` is set) and TRL's
    `_save_checkpoint` both write the card through `create_model_card()` just before uploading the output folder.
    Overriding that one method makes every push (at the end, and each checkpoint push of `hub_strategy`) carry our
    card; pushing the folder ourselves after `save_model` would leave TRL's generic text-generation card on those
    pushes and on a `trainer.push_to_hub()` that a user calls.

    Takes the keyword `model_card` ([`CardInputs`]) besides the trainer's own arguments.
    """

    def __init__(self, *args, model_card: CardInputs, **kwargs):
        eval_report = getattr(model_card.script_args, "card_eval_report", None)
        if eval_report is not None:
            read_eval_report(eval_report)  # a wrong path fails now, not after training, just before the push
        self.model_card_inputs = model_card
        super().__init__(*args, **kwargs)

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags=None, **kwargs):
        """Writes occ-hf's card (and `occ_hf_card.json`) into `args.output_dir`; TRL's arguments are not used."""
        if not self.is_world_process_zero():
            return
        save_model_card(ModelCardInfo.from_trainer(self, self.model_card_inputs), self.args.output_dir)


def _plain(value):
    """A YAML- and JSON-safe form of a config value (enums by value, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (list, tuple, set)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def _baseline(config_class, args) -> dict[str, Any]:
    from accelerate.state import is_initialized

    # Built with the run's device and precision switches, so that what __post_init__ derives from them matches.
    switches = {name: getattr(args, name) for name in ("output_dir", "use_cpu", "bf16", "fp16")}
    if is_initialized():
        # Mid-run (the card of each checkpoint), a new TrainingArguments would reset accelerate's state, and the
        # running Accelerator would fail at its next step: the baseline joins the state that is set up instead.
        switches["accelerator_config"] = {"use_configured_state": True}
    with warnings.catch_warnings():  # deprecation notes about TRL's own defaults, already shown for the run's config
        warnings.simplefilter("ignore")
        config = config_class(**switches)
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config_class)}


def _stage_description(stage: str, args) -> str:
    if stage in STAGE_DESCRIPTIONS:
        return STAGE_DESCRIPTIONS[stage]
    doc = (type(args).__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ").strip() or f"trained with {type(args).__name__}."


def _trl_trainer_name(trainer) -> str:
    # `stage_trainer` keeps TRL's class name; after it and occ-hf's mixins (in this package's `stage` and this module)
    # comes TRL's class (or a user's subclass of it).
    mixin_modules = {__name__, __name__.rsplit(".", 1)[0] + ".stage"}
    return next(c.__name__ for c in type(trainer).__mro__[1:] if c.__module__ not in mixin_modules)


def _hub_base_model(model_name_or_path: str | None, explicit: str | None) -> str | None:
    """The Hub id of the starting checkpoint: the one given, the Hub id trained from, or where a local occ-hf
    checkpoint was pushed. A local path is never written as `base_model` (the Hub refuses ids that do not exist)."""
    if explicit:
        return explicit
    if not model_name_or_path:
        return None
    local = Path(model_name_or_path)
    if local.is_dir():
        return _card_record(local).get("repo_id")
    return model_name_or_path


def _card_record(folder: Path) -> dict:
    """The occ-hf card record of a local checkpoint (`occ_hf_card.json`), or `{}` when it has none or it is
    unreadable: then the card just says less."""
    try:
        return json.loads((folder / CARD_INFO_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _base_license(model_name_or_path: str | None) -> str | None:
    """The license a local starting checkpoint declares: its occ-hf card record's, else its `README.md` card's (a
    Hub snapshot's). Hub ids are not looked up: training must not depend on reaching the Hub for a card."""
    if not model_name_or_path or not Path(model_name_or_path).is_dir():
        return None
    local = Path(model_name_or_path)
    if (local / CARD_INFO_NAME).is_file():
        return _card_record(local).get("license")
    readme = local / "README.md"
    if readme.is_file():
        from huggingface_hub import ModelCard

        try:
            return ModelCard.load(readme).data.license
        except (ValueError, OSError):
            return None  # a README without a readable card header: no license to inherit
    return None


def _is_local(path: str) -> bool:
    return os.path.exists(path)


def _datasets(script_args, dataset_args) -> list[dict]:
    entries = getattr(dataset_args, "datasets", None) or []
    if entries:
        return [
            {"path": d.path, "name": d.name, "split": d.split, "data_dir": d.data_dir}
            for d in entries
            if getattr(d, "path", None)
        ]
    if getattr(script_args, "dataset_name", None):
        return [
            {
                "path": script_args.dataset_name,
                "name": script_args.dataset_config,
                "split": script_args.dataset_train_split,
                "data_dir": getattr(script_args, "dataset_data_dir", None),
            }
        ]
    return []


def _lora_targets(model) -> Any:
    peft_config = getattr(model, "peft_config", None) or {}
    config = peft_config.get("default") if isinstance(peft_config, dict) else None
    return getattr(config, "target_modules", None)


def _losses(log_history: list[dict]) -> tuple[list[dict], float | None]:
    logged = [entry for entry in log_history if "loss" in entry and "step" in entry]
    if len(logged) > _MAX_LOSS_ROWS:
        last = len(logged) - 1
        picks = sorted({round(i * last / (_MAX_LOSS_ROWS - 1)) for i in range(_MAX_LOSS_ROWS)})
        logged = [logged[i] for i in picks]
    rows = [{"step": entry["step"], "loss": f"{entry['loss']:.4f}"} for entry in logged]
    train_loss = next((entry["train_loss"] for entry in reversed(log_history) if "train_loss" in entry), None)
    return rows, train_loss


def _tags(stage: str, trainer_tags: list[str]) -> list[str]:
    tags = ["occ-hf", "occ-mllm-cot", "internvl", "occluded-object-recognition", "obman", stage, *trainer_tags]
    return list(dict.fromkeys(tags))


def _citations(trainer) -> list[str]:
    from ..version import CITATION

    citations = [CITATION.strip()]
    method = (getattr(trainer, "_paper", None) or {}).get("citation")
    if method:
        citations.append(method.strip())
    return citations


def _versions(with_peft: bool) -> dict[str, str]:
    from ..version import __version__

    versions = {"occ-hf": __version__}
    for name in ("transformers", "trl", "torch", "datasets", *(("peft",) if with_peft else ())):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions
