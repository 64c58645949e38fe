"""`occ-hf eval --model M --dataset D` end to end: a tiny OccInternVL over a generated 8-image ObMan test split."""

import json
import shutil

import datasets
import pytest
import torch

from occ_hf.cli import main, run
from occ_hf.eval import EvalConfig, run_eval
from occ_hf.eval.inference import load_test_rows, model_recognizer
from occ_hf.obman import ObManSplit, generate_obman_split


# Tiny tensors gain nothing from threads, and on a shared 2-core machine thread hand-offs cost 100x the math.
torch.set_num_threads(1)

NUM_SAMPLES = 8


@pytest.fixture(scope="module", autouse=True)
def datasets_cache(tmp_path_factory):
    """Keeps the builder's cache out of the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf_datasets_cache")))
        yield


@pytest.fixture(scope="module")
def split_with_views(tmp_path_factory):
    """An 8-sample ObMan test split and its 3D views (the object-only renders under the seed's view names), with the
    view of one sample left out: the last one whose class is the class of sample 0 (the class the model answers).

    Returns `(root, views_dir, labels, missing_id)`; `labels` maps id to class name.
    """
    root = tmp_path_factory.mktemp("obman_eval_model")
    generate_obman_split(root, n=NUM_SAMPLES, seed=3, split="test", batch_size=NUM_SAMPLES, progress=False)
    labels = {sample.sample_id: sample.class_name for sample in ObManSplit(root, "test")}
    ids = list(labels)
    same_class = [sample_id for sample_id in ids[1:] if labels[sample_id] == labels[ids[0]]]
    assert same_class, "the generated split needs two samples of one class for the missing-view check"
    missing_id = same_class[-1]
    views = tmp_path_factory.mktemp("views")
    for sample_id in ids:
        if sample_id != missing_id:
            view_name = f"{sample_id}_0_obman_test_rgb_{sample_id}.jpg.png"  # the seed's name of a view
            shutil.copy(root / "test" / "rgb_obj" / f"{sample_id}.jpg", views / view_name)
    return root, views, labels, missing_id


@pytest.fixture(scope="module")
def constant_model_dir(tiny_dir, split_with_views, tmp_path_factory):
    """The tiny checkpoint after 40 steps of answering Q1 with the class of sample 0 and the clarity question with
    "No." on the split's images, and Q1 with that class on their object-only renders (the views): a model whose
    answers are known, so that every metric has a value to check."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, _, labels, _ = split_with_views
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    prompts = model.config.prompts["code"]
    answer = prompts["answer_template"].format(class_name=next(iter(labels.values())))

    def turn(role, text, image=None):
        content = [{"type": "text", "text": text.replace("<image>", "")}]
        return {"role": role, "content": content + ([{"type": "image", "image": image}] if image else [])}

    def image(folder, sample_id):
        return Image.open(root / "test" / folder / f"{sample_id}.jpg").convert("RGB")

    ids = list(labels)
    on_images = [
        [
            turn("user", prompts["describe"][0], image("rgb", sample_id)),
            turn("assistant", answer),
            turn("user", prompts["reflect_at_inference"]),
            turn("assistant", prompts["no"]),
        ]
        for sample_id in ids
    ]
    on_views = [
        [turn("user", prompts["decide"], image("rgb_obj", sample_id)), turn("assistant", answer)] for sample_id in ids
    ]
    # One batch per kind of conversation, each of equal-length rows: no padding, so that training sees the positions
    # that generation uses.
    batches = []
    for conversations in (on_images, on_views):
        batch = processor.apply_chat_template(
            conversations, tokenize=True, return_dict=True, return_tensors="pt", return_assistant_tokens_mask=True
        )
        batch["labels"] = batch["input_ids"].masked_fill(batch.pop("assistant_masks") == 0, -100)
        batches.append(dict(batch))
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        loss = sum(model(**batch).loss for batch in batches)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    output_dir = tmp_path_factory.mktemp("constant_model")
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def _expected_metrics(labels: dict[str, str], missing_id: str) -> dict:
    """The three metrics of the constant model: Q1 names the class of sample 0 everywhere, clarity is always "No.",
    and the view answer is that class again, wherever a view exists."""
    answered = next(iter(labels.values()))
    right = [sample_id for sample_id, label in labels.items() if label == answered]
    n = len(labels)
    return {
        "description": {"accuracy": len(right) / n, "correct": len(right), "total": n},
        "reflection": {"accuracy": (n - len(right)) / n, "correct": n - len(right), "total": n},
        "decision": {"accuracy": (len(right) - 1) / n, "correct": len(right) - 1, "total": n},
    }


def _without_source(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "source"}


def test_cli_runs_the_model_and_the_predictions_rescore(tmp_path, constant_model_dir, split_with_views, capsys):
    root, views, labels, missing_id = split_with_views
    out = tmp_path / "run"
    main(
        [
            "eval",
            "--model",
            str(constant_model_dir),
            "--dataset",
            "occ-obman-cot",
            "--config",
            "test",
            "--split",
            "test",
            "--data_dir",
            str(root),
            "--views_dir",
            str(views),
            "--batch_size",
            "3",
            "--output_dir",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["num_images"] == report["num_predicted"] == NUM_SAMPLES
    assert report["stages"] == ["description", "reflection", "decision"]
    # Description and Reflection over the images with a prediction (all 8), Decision over every row; the sample
    # whose view is missing was answered right on the image but counts wrong on Decision.
    assert report["metrics"] == _expected_metrics(labels, missing_id)
    assert report["decision_breakdown"]["unclear_no_view"] == 1
    assert report["decision_breakdown"]["unclear_view_right"] == report["metrics"]["decision"]["correct"]
    assert report["source"].startswith(f"{constant_model_dir} on occ-obman-cot (test/test, 8 images)")
    for name in ("report.md", "confusion_matrix.png", "accuracy_by_occlusion.png", "accuracy_per_class.png"):
        assert (out / name).stat().st_size > 0
    assert f"| Decision | {report['metrics']['decision']['accuracy']:.4f} |" in printed

    # The seed's stage format, with the answer on the 3D view (null where the view is missing).
    predictions = json.loads((out / "predictions.json").read_text())
    answer = f"The object is {next(iter(labels.values()))}."
    assert list(predictions) == list(labels)
    for sample_id, entry in predictions.items():
        view_answer = None if sample_id == missing_id else answer
        assert entry == {"object": answer, "clarity": "No.", "view_answer": view_answer}

    rescored = tmp_path / "rescored"
    main(
        [
            "eval",
            "--predictions",
            str(out / "predictions.json"),
            "--references",
            str(root),
            "--output_dir",
            str(rescored),
        ]
    )
    assert _without_source(json.loads((rescored / "report.json").read_text())) == _without_source(report)


def test_published_parquet_folder_and_max_samples(tmp_path, constant_model_dir, split_with_views):
    from datasets import load_dataset

    from occ_hf.data.export import export_dataset

    root, views, labels, missing_id = split_with_views
    test_rows = load_dataset("occ-obman-cot", "test", data_dir=str(root), views_dir=str(views))
    folder = export_dataset({"test": test_rows}, tmp_path / "occ-obman-cot-parquet")
    config = EvalConfig(
        model=str(constant_model_dir),
        dataset=str(folder),
        max_samples=6,
        batch_size=4,
        output_dir=str(tmp_path / "run"),
    )
    report, paths = run_eval(config)
    first = dict(list(labels.items())[:6])
    assert missing_id in first  # the sample without a view is among the rows scored
    assert report["num_images"] == 6 and report["metrics"] == _expected_metrics(first, missing_id)
    assert list(json.loads(paths["predictions"].read_text())) == list(first)


def test_random_model_keeps_every_row_in_the_decision_denominator(tmp_path, tiny_dir, split_with_views):
    root, views, labels, _ = split_with_views
    config = EvalConfig(
        model=str(tiny_dir),
        dataset="occ-obman-cot",
        data_dir=str(root),
        views_dir=str(views),
        output_dir=str(tmp_path),
    )
    report, _ = run_eval(config)
    # An untrained model answers neither a class nor yes/no: nothing is right, yet every image is counted.
    for stage in ("description", "reflection", "decision"):
        assert report["metrics"][stage] == {"accuracy": 0.0, "correct": 0, "total": NUM_SAMPLES}
    assert report["decision_breakdown"]["clarity_unparsed"] == NUM_SAMPLES


def test_view_only_asks_on_the_views_and_leaves_out_rows_without_one(tmp_path, constant_model_dir, split_with_views):
    root, views, labels, missing_id = split_with_views
    config = EvalConfig(
        model=str(constant_model_dir),
        dataset="occ-obman-cot",
        data_dir=str(root),
        views_dir=str(views),
        view_only=True,
        output_dir=str(tmp_path),
    )
    report, paths = run_eval(config)
    assert (
        report["num_images"] == NUM_SAMPLES - 1
        and "asked on their 3D views alone (1 without a view" in (report["source"])
    )
    predictions = json.loads(paths["predictions"].read_text())
    assert missing_id not in predictions and set(predictions) == set(labels) - {missing_id}


def test_inputs_are_checked(tmp_path, tiny_dir, split_with_views):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, views, _, _ = split_with_views
    with pytest.raises(ValueError, match="either --model with --dataset .* not both"):
        run_eval(EvalConfig(model=str(tiny_dir), dataset="occ-obman-cot", predictions=["p.json"]))
    with pytest.raises(ValueError, match="--model needs --dataset"):
        run_eval(EvalConfig(model=str(tiny_dir)))
    with pytest.raises(ValueError, match=r"has no column\(s\) \['image'\].*pass --config test"):
        load_test_rows("occ-obman-cot", "reflection", data_dir=str(root))
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    model.config.prompt_style = "paper"
    with pytest.raises(ValueError, match="prompt style 'paper' .* cannot be scored"):
        model_recognizer(model, AutoProcessor.from_pretrained(tiny_dir))


def test_prompt_style_code_published_sends_the_published_clarity_question(
    tmp_path, tiny_dir, split_with_views, monkeypatch, capsys
):
    """The seed's published figures were scored asking "...in the hand??\n"; `--prompt_style code_published` asks
    that, byte for byte, even of a checkpoint saved before the style existed (its table then comes from occ-hf)."""
    from occ_hf.models.occ_internvl.processing_occ_internvl import OccInternVLProcessor

    root, views, _, _ = split_with_views
    old = tmp_path / "old_checkpoint"
    shutil.copytree(tiny_dir, old)
    config = json.loads((old / "config.json").read_text())
    del config["prompts"]["code_published"]
    (old / "config.json").write_text(json.dumps(config))
    rendered = []
    apply_chat_template = OccInternVLProcessor.apply_chat_template

    def recording(self, *args, **kwargs):
        text = apply_chat_template(self, *args, **kwargs)
        rendered.append(text)
        return text

    monkeypatch.setattr(OccInternVLProcessor, "apply_chat_template", recording)
    argv = ["eval", "--model", str(old), "--dataset", "occ-obman-cot", "--data_dir", str(root)]
    argv += ["--views_dir", str(views), "--max_samples", "2"]
    published_turn = "<|im_start|>user\nIs it clear to identify the object in the hand??\n<|im_end|>\n"
    code_turn = "<|im_start|>user\nIs it clear to identify the object in the hand?\n<|im_end|>\n"

    main([*argv, "--prompt_style", "code_published", "--output_dir", str(tmp_path / "published")])
    reflect_prompts = [text for text in rendered if "clear to identify" in text]
    assert len(reflect_prompts) == 2 and all(
        text.endswith(published_turn + "<|im_start|>assistant\n") for text in reflect_prompts
    )
    report = json.loads((tmp_path / "published" / "report.json").read_text())
    assert report["source"].endswith("prompt style code_published")

    rendered.clear()
    main([*argv, "--output_dir", str(tmp_path / "code")])  # the checkpoint's own style, `code`, is unchanged
    reflect_prompts = [text for text in rendered if "clear to identify" in text]
    assert len(reflect_prompts) == 2 and all(
        text.endswith(code_turn + "<|im_start|>assistant\n") for text in reflect_prompts
    )
    capsys.readouterr()

    assert run([*argv, "--prompt_style", "poem"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"occ-hf: error: ValueError: --prompt_style 'poem' is unknown: {old} and occ-hf know code, code_published, "
        "paper."
    )
    assert run(["eval", "--predictions", "p.json", "--references", "r.json", "--prompt_style", "code"]) == 1
    assert "--prompt_style only applies with --model" in capsys.readouterr().err


def test_self_consistency_votes_over_sampled_runs(tmp_path, constant_model_dir, split_with_views):
    root, views, labels, missing_id = split_with_views
    config = EvalConfig(
        model=str(constant_model_dir),
        dataset="occ-obman-cot",
        data_dir=str(root),
        views_dir=str(views),
        output_dir=str(tmp_path),
        num_samples=3,
        temperature=0.05,  # near-greedy: the vote must reproduce the greedy figures
    )
    report, paths = run_eval(config)
    assert "majority vote of 3 runs sampled at temperature 0.05" in report["source"]
    assert report["metrics"] == _expected_metrics(labels, missing_id)
    # Voted answers need not follow one chain, so no per-stage predictions file is written for them.
    assert "predictions" not in paths and not (tmp_path / "predictions.json").exists()


def test_recognize_samples_when_asked(tiny_dir, split_with_views):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, _, labels, _ = split_with_views
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_dir)
    images = [Image.open(root / "test" / "rgb" / f"{sample_id}.jpg").convert("RGB") for sample_id in labels]
    greedy = [r.describe for r in model.recognize(images, processor=processor, max_new_tokens=6)]
    explicit = model.recognize(images, processor=processor, max_new_tokens=6, generation_kwargs={"do_sample": False})
    assert [r.describe for r in explicit] == greedy
    torch.manual_seed(0)
    hot = {"do_sample": True, "temperature": 5.0}
    sampled = [
        r.describe for r in model.recognize(images, processor=processor, max_new_tokens=6, generation_kwargs=hot)
    ]
    # The untrained model's next-token distribution is nearly flat: hot sampling leaves the greedy path.
    assert sampled != greedy


@pytest.mark.slow
def test_two_processes_score_each_image_once_and_write_the_report_of_one(
    tmp_path, constant_model_dir, split_with_views
):
    """`torchrun --nproc_per_node 2 -m occ_hf.cli eval --model ...` on the CPU (gloo): 8 rows in batches of 3 are
    split 3 / 5 between the two processes, and the main process writes what a single process writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import occ_hf

    root, views, labels, _ = split_with_views
    argv = ["eval", "--model", str(constant_model_dir), "--dataset", "occ-obman-cot", "--data_dir", str(root)]
    argv += ["--views_dir", str(views), "--batch_size", "3"]
    main([*argv, "--output_dir", str(tmp_path / "one")])

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(occ_hf.__file__).parents[1]),  # this checkout's occ_hf, in both processes
        "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets_cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    completed = subprocess.run(
        [*launch, "-m", "occ_hf.cli", *argv, "--output_dir", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    # printed by the main process only
    assert completed.stdout.count("# OCC-MLLM-CoT evaluation") == 1, completed.stdout[-3000:]
    written = sorted(path.name for path in (tmp_path / "one").iterdir())
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == written
    for name in written:  # report.json, report.md, predictions.json and the plots
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    pairs = json.loads((tmp_path / "two" / "predictions.json").read_text(), object_pairs_hook=list)
    assert [sample_id for sample_id, _ in pairs] == list(labels)  # each image once, in the rows' order
    assert json.loads((tmp_path / "two" / "report.json").read_text())["num_images"] == NUM_SAMPLES
