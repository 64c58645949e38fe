"""A wrong recipe or flag is one line naming the recipe, the option and the fix, before any model or data loads."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from occ_hf import cli
from occ_hf.train import mpo as mpo_stage
from occ_hf.train import sft as sft_stage
from occ_hf.train.loading import load_model


RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "sft_reflection.yaml"


def _recipe(tmp_path, old: str, new: str) -> str:
    text = RECIPE.read_text()
    assert old in text
    path = tmp_path / "recipe.yaml"
    path.write_text(text.replace(old, new))
    return str(path)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("learning_rate: 1.0e-3", "learning_rate: fast", r"recipe\.yaml: learning_rate is 'fast'; expected a number"),
        ("per_device_train_batch_size: 8", "per_device_train_batch_size: [4, 8]", r"is \[4, 8\]; expected an integer"),
        ("per_device_train_batch_size: 8", "per_device_train_batch_size: 8.5", r"is 8\.5; expected an integer"),
        ("num_train_epochs: 1", "num_tran_epochs: 1", r"unknown option num_tran_epochs \(did you mean num_train_ep"),
        ("seed: 0", "seed: [0", r"recipe\.yaml: not valid YAML at line \d+, column \d+ \("),
    ],
    ids=["wrong-type", "list-for-a-number", "float-for-an-integer", "misspelt-key", "yaml-syntax"],
)
def test_a_wrong_recipe_is_named_before_anything_loads(tmp_path, old, new, match):
    with pytest.raises(ValueError, match=match):
        sft_stage.make_parser().parse_args_and_config(["--config", _recipe(tmp_path, old, new)])


def test_a_wrong_flag_or_a_missing_recipe_is_one_error_not_the_usage(tmp_path):
    parser = mpo_stage.make_parser(prog="occ-hf train mpo")
    with pytest.raises(ValueError, match=r"occ-hf train mpo: argument --beta: invalid float value: 'high' .*--help"):
        parser.parse_args_and_config(["--config", str(RECIPE.parent / "mpo.yaml"), "--beta", "high"])
    with pytest.raises(FileNotFoundError, match=r"nothere\.yaml: recipe not found"):
        parser.parse_args_and_config(["--config", str(tmp_path / "nothere.yaml")])
    with pytest.raises(ValueError, match=r"a recipe is a YAML mapping .*not a list"):
        (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
        parser.parse_args_and_config(["--config", str(tmp_path / "list.yaml")])


def test_the_command_line_prints_one_line_and_exits_1(tmp_path, capsys):
    recipe = _recipe(tmp_path, "learning_rate: 1.0e-3", "learning_rate: fast")
    assert cli.run(["train", "sft", "--config", recipe]) == 1
    err = capsys.readouterr().err.splitlines()
    expected = f"{recipe}: learning_rate is 'fast'; expected a number. Fix the recipe."
    assert err[0] == f"occ-hf: error: ValueError: {expected}"
    assert "usage:" not in "\n".join(err)


def test_a_missing_model_path_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    training_args = SimpleNamespace(trust_remote_code=False, model_init_kwargs=None)
    for path, match in [("./runs/x", r"\./runs/x: model not found"), ("runs/x", r"runs/x: no such checkpoint folder")]:
        model_args = SimpleNamespace(model_name_or_path=path, model_revision=None, attn_implementation=None)
        model_args.dtype = None
        with pytest.raises(OSError, match=match):
            load_model(model_args, training_args)
    (tmp_path / "weights.bin").write_bytes(b"")
    model_args.model_name_or_path = "weights.bin"
    with pytest.raises(FileNotFoundError, match="is a file, not a checkpoint folder"):
        load_model(model_args, training_args)


def test_freezing_a_checkpoint_that_is_not_occ_internvl_is_named(tiny_dir, tmp_path):
    # transformers' own InternVL does not know freeze_vision: without the check, its __init__ raised a TypeError.
    import json
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(tiny_dir, plain)
    config = json.loads((plain / "config.json").read_text())
    config.pop("auto_map", None)
    (plain / "config.json").write_text(json.dumps(config | {"model_type": "internvl"}))
    training_args = SimpleNamespace(trust_remote_code=False, model_init_kwargs={"freeze_vision": True})
    model_args = SimpleNamespace(model_name_or_path=str(plain), model_revision=None, attn_implementation=None)
    model_args.dtype = None
    with pytest.raises(ValueError, match=r"plain: model_type 'internvl', and freeze_vision is an OccInternVL option"):
        load_model(model_args, training_args)
    model = load_model(model_args, training_args, freeze_vision=False)
    assert type(model).__name__ == "InternVLForConditionalGeneration"
    assert all(p.requires_grad for p in model.parameters())
