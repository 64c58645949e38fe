"""`occ-hf push MODEL_DIR REPO_ID`: publish a folder that `occ-hf train` wrote, model card included, after the fact.

For a model trained without `--push_to_hub`, or evaluated since: the card is rendered again from the record training
left beside it (`occ_hf_card.json`), now naming the repository and, when `MODEL_DIR/eval/report.json` (or
`--eval_report`) exists, the evaluation's Description / Reflection / Decision; then the folder is uploaded as
`Trainer.push_to_hub` does (without `checkpoint-*` folders and `_*` files). It sits outside `occ_hf.train` so that
`occ-hf push --help` does not import TRL.

```bash
occ-hf train sft --config recipes/tiny/sft_reflection.yaml
occ-hf eval --model runs/tiny-sft-reflection --dataset occ-obman-cot --data_dir data/obman \\
    --output_dir runs/tiny-sft-reflection/eval
occ-hf push runs/tiny-sft-reflection org/occ-internvl-tiny-sft
```
```python
from occ_hf.push import push_model

url = push_model("runs/tiny-sft-reflection", "org/occ-internvl-tiny-sft")
```
"""

import os
from dataclasses import dataclass, field
from pathlib import Path


__all__ = ["PushConfig", "push_model", "run_push"]

# As transformers' Trainer.push_to_hub: intermediate checkpoints and private files stay local.
IGNORE_PATTERNS = ["_*", "checkpoint-*"]


@dataclass
class PushConfig:
    r"""
    Configuration of `occ-hf push MODEL_DIR REPO_ID`.

    Parameters:
        model_dir (`str`): A folder written by `occ-hf train` (model or adapters, processor, `occ_hf_card.json`).
        repo_id (`str`): The Hub model repository (`namespace/name`, or `name` under the token's user).
        eval_report (`str`, *optional*): An `occ-hf eval` report.json for the card; default
            `MODEL_DIR/eval/report.json` when it exists.
        private (`bool`, *optional*, defaults to `False`): Create the repository private (if it does not exist).
        revision (`str`, *optional*): The branch to commit to; the default branch by default.
        commit_message (`str`, *optional*, defaults to `"Upload occ-hf model"`): The commit message.
    """

    model_dir: str = field(metadata={"help": "A folder written by `occ-hf train`."})
    repo_id: str = field(metadata={"help": "The Hub model repository (namespace/name)."})
    eval_report: str | None = field(default=None, metadata={"help": "occ-hf eval report.json for the card."})
    private: bool = field(default=False, metadata={"help": "Create the repository private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to."})
    commit_message: str = field(default="Upload occ-hf model", metadata={"help": "The commit message."})


def run_push(config: PushConfig) -> str:
    """`occ-hf push`: [`push_model`] with `config`'s fields; returns the commit's URL."""
    return push_model(
        config.model_dir,
        config.repo_id,
        eval_report=config.eval_report,
        private=config.private,
        revision=config.revision,
        commit_message=config.commit_message,
    )


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    eval_report: str | os.PathLike | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload occ-hf model",
    token: str | None = None,
) -> str:
    """
    Renders `model_dir`'s card for `repo_id` and uploads the folder.

    Args:
        model_dir (`str` or `os.PathLike`): A folder written by `occ-hf train`.
        repo_id (`str`): The Hub model repository; created when missing.
        eval_report (`str` or `os.PathLike`, *optional*): An `occ-hf eval` report.json (default
            `model_dir/eval/report.json` when it exists).
        private (`bool`, *optional*, defaults to `False`), revision (`str`, *optional*),
        commit_message (`str`, *optional*), token (`str`, *optional*): As for `HfApi.upload_folder`.

    Returns:
        `str`: the commit's URL.
    """
    from huggingface_hub import HfApi

    from .train.model_card import ModelCardInfo, save_model_card

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such folder; give the output_dir of `occ-hf train`.")
    if not any((model_dir / name).is_file() for name in ("config.json", "adapter_config.json")):
        raise FileNotFoundError(
            f"{model_dir} holds no config.json or adapter_config.json: not a saved model; give the output_dir of "
            "`occ-hf train` (a checkpoint-* folder lacks the processor and the card)."
        )
    info = ModelCardInfo.load(model_dir)
    api = HfApi(token=token)
    info.repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    info.model_name = info.repo_id.split("/")[-1]
    info.set_eval_report(eval_report, model_dir)
    save_model_card(info, model_dir)
    commit = api.upload_folder(
        folder_path=str(model_dir),
        repo_id=info.repo_id,
        revision=revision,
        commit_message=commit_message,
        ignore_patterns=IGNORE_PATTERNS,
    )
    return commit.commit_url
