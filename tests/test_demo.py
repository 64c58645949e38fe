"""`occ-hf demo` on its built-in default, end to end: every file of the report, the cards, the balanced clarity
labels, and what issue 12's "must show" asks of the final checkpoint on the held-out split.

These are the suite's longest tests (one demo run, several minutes on 2 cores, shared by both tests): they run the
README's main command as a user would, seeded, so the figures repeat on one machine.
"""

import json

import pytest

from occ_hf.demo import CHANCE, DemoConfig, run_demo


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"num_train": 0}, "--num_train must be at least 1"),
        ({"sft2_steps": -1}, "--sft2_steps must be 0"),
        ({"min_distance": 0.6, "max_distance": 0.5}, "--min_distance and --max_distance"),
        ({"max_occlusion": 1.0}, "--min_occlusion and --max_occlusion"),
        ({"max_roll": 181}, "--max_roll must be between 0 and 180"),
        ({"background": "photo"}, "--background must be one of gradient, plain, dark, got 'photo'"),
        ({"learning_rate": 0}, "--learning_rate must be positive"),
        ({"device": "tpu"}, "--device must be cpu or cuda"),
    ],
)
def test_demo_options_are_checked_where_given(tmp_path, setting, match):
    # Refused when the config is made, before minutes of generation; nothing is written.
    with pytest.raises(ValueError, match=match):
        DemoConfig(output_dir=str(tmp_path / "demo"), **setting)
    assert not (tmp_path / "demo").exists()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, run_demo(DemoConfig(output_dir=str(out)))


@pytest.mark.slow
def test_demo_writes_its_report_cards_and_balanced_clarity_labels(demo):
    out, summary = demo
    stages = summary["stages"]
    assert list(stages) == ["before", "sft1", "sft2", "mpo"]
    # Untrained, the model names no class at all; trained, it does better than a uniform guess.
    assert stages["before"]["decision"] == 0.0
    assert stages["sft1"]["description"] >= 1.4 * CHANCE, stages
    # SFT1 learned the views (the decision stage's input) far better than the occluded images.
    assert stages["sft1"]["view_only"] >= stages["sft1"]["description"] + 0.2, stages

    report = json.loads((out / "report.json").read_text())
    assert report["stages"]["mpo"]["decision"] == stages["mpo"]["decision"]
    assert report["mpo_effect"]["num_images"] == summary["splits"]["test"]["num_read"]
    markdown = (out / "report.md").read_text()
    assert "| mpo |" in markdown and "best constant" in markdown and "view only" in markdown
    assert "MPO changed" in markdown
    assert (out / "training_progress.png").stat().st_size > 0
    for stage in ("sft1", "sft2", "mpo"):
        assert (out / stage / "model.safetensors").is_file()
        assert (out / stage / "eval" / "confusion_matrix.png").stat().st_size > 0
        # The card carries the demo's own evaluation of that checkpoint.
        card = (out / stage / "README.md").read_text()
        assert "Not evaluated yet" not in card
        assert f"{stages[stage]['description']:.4f}" in card
    # The clarity labels of SFT2 and MPO came from SFT1's own answers on each split, as the seed makes them, and
    # were balanced as the seed balances its preference pairs.
    assert json.loads((out / "clarity" / "train.json").read_text())
    assert summary["clarity"]["balance"] == "downsample"
    rows = summary["clarity"]["rows"]["train"]
    assert rows["yes"] == rows["no"] > 0
    assert (out / "dataset" / "preference").is_dir()


@pytest.mark.slow
def test_demo_meets_the_bar_of_issue_12_on_description_clarity_share_and_decision(demo):
    _, summary = demo
    final = summary["stages"]["mpo"]
    assert final["description"] >= 0.5, final
    # Both clarity answers are given.
    assert 0.15 <= final["clear_share"] <= 0.85, final
    # The 3D views pay: the decision beats the description.
    assert final["decision"] >= final["description"] + 0.10, final
    # MPO did something measurable: it changed some clarity answers, not all of them.
    effect = summary["mpo_effect"]
    assert 0 < effect["clarity_changed"] < effect["num_images"], effect


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 12 is open: the clarity answer carries too little information (Reflection ~0.59 against a best "
    "constant of ~0.61; benchmarks/README.md, 'The demo'); an XPASS means the bar is met: drop this mark",
)
def test_demo_meets_the_bar_of_issue_12_on_reflection(demo):
    _, summary = demo
    final = summary["stages"]["mpo"]
    assert final["reflection"] >= final["best_constant"] + 0.05, final
