"""`--push_to_hub` of the training stages and `occ-hf push`, against the local Hub-compatible server: the pushed repo
holds the model, its code, the processor and occ-hf's model card; it loads back by repo id with the same logits as
the local output folder, and the card parses with `ModelCard.load`. Also: the card templates ship in a wheel."""

import email.message
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from occ_hf import cards, cli
from occ_hf.cards import CARD_TEMPLATES, project_url, read_card_template
from occ_hf.eval import ImagePrediction, PredictionSet, Reference, score_predictions, write_report
from occ_hf.obman import OCC_CLASSES
from occ_hf.train import OccSFTConfig
from occ_hf.train.model_card import ModelCardInfo, _base_license, render_model_card, training_hyperparameters


REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES = REPO_ROOT / "recipes"
BASE_REPO = "occ-tester/tiny-occ-internvl"
PROCESSOR_FILES = {"processor_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}
MODEL_FILES = {
    "config.json",
    "model.safetensors",
    "generation_config.json",
    "configuration_occ_internvl.py",
    "modeling_occ_internvl.py",
    "processing_occ_internvl.py",
    "README.md",
    *PROCESSOR_FILES,
}
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "README.md", *PROCESSOR_FILES}
CASES = {
    # name: (stage, recipe, extra flags, files pushed, what the card lists among the hyper-parameters)
    "sft": (
        "sft",
        "sft_reflection.yaml",
        [],
        MODEL_FILES,
        ["| `learning_rate` | `0.001` |", "| `assistant_only_loss` | `True` |"],
    ),
    "mpo": (
        "mpo",
        "mpo.yaml",
        [],
        MODEL_FILES,
        ["| `loss_weights` | `[0.8, 0.2, 1.0]` |", "| `loss_type` | `['sigmoid', 'bco_pair', 'sft']` |"],
    ),
    "sc": ("sc", "sc.yaml", [], MODEL_FILES, ["| `improvement_bonus` | `0.1` |"]),
    "sft-lora": ("sft", "sft_reflection.yaml", ["--use_peft"], ADAPTER_FILES, ["| `learning_rate` | `0.001` |"]),
}


@pytest.fixture
def hub_workdir(hub_server, tiny_dir, in_recipe_workdir):
    """The recipe folder with the local Hub up and the tiny checkpoint published on it as `BASE_REPO`.

    `hub_server` comes before `in_recipe_workdir`, so the rows built once per session stay in their session cache.
    """
    HfApi().create_repo(BASE_REPO)
    HfApi().upload_folder(folder_path=str(tiny_dir), repo_id=BASE_REPO)
    return in_recipe_workdir


def _logits(model_ref, processor, image: Image.Image) -> torch.Tensor:
    model = AutoModelForImageTextToText.from_pretrained(model_ref).eval()
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What?"}]}]
    batch = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits


def _first_image(workdir: Path) -> Image.Image:
    return Image.open(sorted((workdir / "data" / "obman-tiny" / "train" / "rgb").iterdir())[0]).convert("RGB")


@pytest.mark.parametrize("case", list(CASES))
def test_push_to_hub_from_training_loads_back_with_our_card(case, hub_workdir, hub_server):
    stage, recipe, flags, files, hyperparameter_rows = CASES[case]
    repo_id, out = f"occ-tester/tiny-{case}", hub_workdir / "runs" / f"pushed-{case}"
    cli.main(
        ["train", stage, "--config", str(RECIPES / "tiny" / recipe), "--max_steps", "2", "--output_dir", str(out)]
        + ["--model_name_or_path", BASE_REPO, "--push_to_hub", "--hub_model_id", repo_id, *flags]
    )

    pushed = hub_server.files("model", repo_id)
    assert set(pushed) >= files, files - set(pushed)
    assert pushed["README.md"] == (out / "README.md").read_bytes()

    processor = AutoProcessor.from_pretrained(repo_id)
    image = _first_image(hub_workdir)
    from_hub, local = _logits(repo_id, processor, image), _logits(out, AutoProcessor.from_pretrained(out), image)
    assert torch.equal(from_hub, local)
    # and it is the trained model, not the base one
    assert not torch.equal(from_hub, _logits(BASE_REPO, processor, image))

    card = ModelCard.load(repo_id)
    assert card.data.base_model == BASE_REPO
    assert card.data.datasets == ["occ-obman-cot"]
    assert {"occ-hf", "occ-mllm-cot", stage, "trl"} <= set(card.data.tags)
    assert card.data.pipeline_tag == "image-text-to-text"
    assert card.data.library_name == ("peft" if flags else "transformers")
    text = card.text
    assert "Model Card for" not in text  # TRL's generic card did not land
    assert f"OccInternVL trained with the `{stage}` stage" in text
    assert f"- **Base model:** [{BASE_REPO}](https://huggingface.co/{BASE_REPO})" in text
    assert "- **Data:** `occ-obman-cot`, config `" in text
    assert "| `max_steps` | `2` |" in text and "| `precision` | `fp32` |" in text
    for row in hyperparameter_rows:
        assert row in text
    assert f'AutoModelForImageTextToText.from_pretrained("{repo_id}")' in text
    assert f'pipeline("occluded-object-recognition", model="{repo_id}")' in text
    assert "@article{wang2025occmllmcot" in text
    assert "| 1 | " in text and "| 2 | " in text and "(2 steps)" in text  # the logged losses
    assert "Not evaluated yet." in text
    if flags:  # LoRA: the repo holds adapters, which from_pretrained applied to the base model above
        assert "LoRA adapters on the language model only (r=16, alpha=32)" in text
        assert "model.safetensors" not in pushed


def _eval_report(model_dir: Path) -> dict:
    references, records = [], []
    for i in range(8):
        label = OCC_CLASSES[i]
        references.append(Reference(f"{i:08d}", label, occlusion=0.5))
        guessed = label if i % 2 else OCC_CLASSES[(i + 1) % len(OCC_CLASSES)]
        records.append(ImagePrediction.from_stages(i, f"The object is {guessed}.", "Yes." if i % 2 else "No.", None))
    report = score_predictions(references, PredictionSet.from_records(records, source="hand-built"))
    write_report(report, model_dir / "eval")
    return report


def test_occ_hf_push_publishes_a_trained_folder_with_its_evaluation(hub_workdir, hub_server, capsys):
    out = hub_workdir / "runs" / "later"
    recipe = str(RECIPES / "tiny" / "sft_reflection.yaml")
    cli.main(["train", "sft", "--config", recipe, "--max_steps", "2", "--card_license", "mit"])
    shutil.copytree(hub_workdir / "runs" / "tiny-sft-reflection", out)
    local_card = ModelCard.load(out / "README.md")
    assert local_card.data.base_model is None  # trained from a local folder: no Hub id to name
    assert local_card.data.license == "mit"
    assert "- **Base model:** a local checkpoint (trained from `runs/tiny`)" in local_card.text
    report = _eval_report(out)
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "junk.bin").write_bytes(b"x")

    cli.main(["push", str(out), "occ-tester/later"])
    assert "occ-tester/later" in capsys.readouterr().out
    pushed = hub_server.files("model", "occ-tester/later")
    assert set(pushed) >= MODEL_FILES and "eval/report.json" in pushed
    assert not any(path.startswith("checkpoint-") for path in pushed)
    card = ModelCard.load("occ-tester/later")
    assert card.data.model_name == "later" and card.data.datasets == ["occ-obman-cot"]
    assert card.data.license == "mit"
    metrics = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert metrics == {title: report["metrics"][title.lower()]["accuracy"] for title in metrics}
    assert set(metrics) == {"Description", "Reflection", "Decision"}
    decision = report["metrics"]["decision"]
    assert f"| Decision | {decision['accuracy']:.4f} | {decision['correct']} / {decision['total']} |" in card.text
    assert 'from_pretrained("occ-tester/later")' in card.text and "Not evaluated yet." not in card.text

    # The next stage, trained from that local folder, names where it was pushed as its base model.
    cli.main(
        ["train", "mpo", "--config", str(RECIPES / "tiny" / "mpo.yaml"), "--max_steps", "1"]
        + ["--model_name_or_path", str(out), "--output_dir", "runs/next"]
    )
    next_card = ModelCard.load(hub_workdir / "runs" / "next" / "README.md")
    assert next_card.data.base_model == "occ-tester/later"
    assert next_card.data.license == "mit"  # inherited from the starting checkpoint's card record


def test_add_eval_to_card_puts_an_evaluation_on_a_trained_folders_card(in_recipe_workdir):
    from occ_hf.train.model_card import add_eval_to_card

    cli.main(["train", "sft", "--config", str(RECIPES / "tiny" / "sft_reflection.yaml"), "--max_steps", "1"])
    out = in_recipe_workdir / "runs" / "tiny-sft-reflection"
    assert "Not evaluated yet." in (out / "README.md").read_text()
    report = _eval_report(out)
    card = ModelCard.load(add_eval_to_card(out))
    assert "Not evaluated yet." not in card.text
    metrics = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert metrics["Description"] == report["metrics"]["description"]["accuracy"]


def test_the_card_license_comes_from_the_starting_checkpoints_card(tmp_path):
    # A Hub snapshot (or a converted checkpoint given a card) declares its license in README.md's header; a card
    # without a header, a Hub id and a missing folder declare none, and the card then has no license.
    snapshot, plain = tmp_path / "snapshot", tmp_path / "plain"
    snapshot.mkdir(), plain.mkdir()
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# A model\n")
    (plain / "README.md").write_text("# A model without a card header\n")
    assert _base_license(str(snapshot)) == "apache-2.0"
    assert _base_license(str(plain)) is None
    assert _base_license("OpenGVLab/InternVL2-1B") is None and _base_license(None) is None


def test_push_refuses_a_folder_that_is_not_a_trained_model(hub_workdir, tiny_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no config.json or adapter_config.json"):
        cli.main(["push", str(tmp_path), "occ-tester/nothing"])
    with pytest.raises(FileNotFoundError, match="occ_hf_card.json not found: .* was not written by `occ-hf train`"):
        cli.main(["push", str(tiny_dir), "occ-tester/nothing"])


def test_a_missing_eval_report_fails_before_training(in_recipe_workdir):
    flags = ["--max_steps", "1", "--output_dir", "runs/never", "--card_eval_report", "runs/none/report.json"]
    with pytest.raises(FileNotFoundError, match="runs/none/report.json: evaluation report not found"):
        cli.main(["train", "sft", "--config", str(RECIPES / "tiny" / "sft_reflection.yaml"), *flags])
    assert not (in_recipe_workdir / "runs" / "never").exists()


def test_a_bad_eval_report_is_named(tmp_path):
    info = ModelCardInfo("sft", "d", "SFTTrainer", "OccSFTConfig", {}, "m")
    (tmp_path / "report.json").write_text(json.dumps({"metrics": {"accuracy": 1.0}}))
    with pytest.raises(ValueError, match="report.json: not an occ-hf evaluation report"):
        info.set_eval_report(tmp_path / "report.json", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.json: evaluation report not found"):
        info.set_eval_report(tmp_path / "missing.json", tmp_path)


@dataclass
class SelfCorrectionConfig(OccSFTConfig):
    """Configuration of a new stage: two attempts at the class question."""

    second_attempt_bonus: float = field(default=0.1, metadata={"help": "Reward weight of r2 - r1."})


def test_a_new_stage_needs_only_its_name_and_config(tmp_path):
    args = SelfCorrectionConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, learning_rate=4e-5)
    hyperparameters = training_hyperparameters(args)
    assert hyperparameters["second_attempt_bonus"] == 0.1 and hyperparameters["learning_rate"] == 4e-5
    assert hyperparameters["lr_scheduler_type"] == "cosine"  # an enum, written by value
    assert "output_dir" not in hyperparameters and "report_to" not in hyperparameters
    info = ModelCardInfo("sc", "self-correction.", "GRPOTrainer", "SelfCorrectionConfig", hyperparameters, "occ-sc")
    card = render_model_card(info)
    assert card.data.base_model is None and card.data.model_name == "occ-sc"
    assert "OccInternVL trained with the `sc` stage" in card.text and "| `second_attempt_bonus` | `0.1` |" in card.text
    assert 'from_pretrained("YOUR_NAMESPACE/occ-sc")' in card.text  # not pushed yet


def test_the_card_links_occ_hf_only_to_the_projects_own_url(monkeypatch):
    # The URL is the first of pyproject's [project.urls], as the installed metadata holds it; none means no link.
    declared = email.message.Message()
    monkeypatch.setattr(cards.metadata, "metadata", lambda name: declared)
    assert project_url() is None
    declared["Project-URL"] = "Repository, https://example.org/occ-hf"
    declared["Project-URL"] = "Documentation, https://example.org/occ-hf/docs"
    assert project_url() == "https://example.org/occ-hf"

    info = ModelCardInfo("sft", "supervised fine-tuning.", "SFTTrainer", "OccSFTConfig", {}, "occ-sft")
    assert "Trained with [occ-hf](https://example.org/occ-hf) " in render_model_card(info).text
    del declared["Project-URL"]
    text = render_model_card(info).text
    assert "Trained with occ-hf " in text and "](https://github.com/occ-hf" not in text


def test_card_templates_are_package_data(tmp_path):
    for name in CARD_TEMPLATES:
        assert read_card_template(name).startswith("---\n{{ card_data }}\n---")
    with pytest.raises(ValueError, match="'nope.md' is not an occ-hf card template"):
        read_card_template("nope.md")


def test_the_wheel_carries_the_card_templates_and_assets(tmp_path):
    # A non-editable wheel of a copy of the sources (the build leaves build/ and *.egg-info behind it).
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "occ_hf", source / "occ_hf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("occ_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"occ_hf/model_cards/{name}" for name in CARD_TEMPLATES} <= names
    assert "occ_hf/data/assets/obman_train_checkpoint-30000_wrong_1_moho.json" in names
