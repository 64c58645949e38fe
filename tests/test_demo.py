"""`occ-hf demo` on its built-in default, end to end: every file of the report, the cards, the balanced clarity
labels, and what issue 12's "must show" asks of the final checkpoint on the held-out split.

These are the suite's longest tests (one demo run, several minutes on 2 cores, shared by both tests): they run the
README's main command as a user would, seeded, so the figures repeat on one machine.
"""

import json

import pytest

from occ_hf.demo import CHANCE, DemoConfig, run_demo


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
    assert stages["sft1"]["view_only"] >= stages["sft1"]["description"] + 0.3, stages

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
@pytest.mark.xfail(
    strict=True,
    reason="issue 12 is open: the tiny model reaches ~0.23 Description on the occluded images and its clarity "
    "answer is a constant (benchmarks/README.md, 'The demo'); an XPASS means the bar is met: drop this mark",
)
def test_demo_meets_the_bar_of_issue_12(demo):
    _, summary = demo
    final = summary["stages"]["mpo"]
    assert final["description"] >= 0.5, final
    # The clarity answer carries information: both answers are given, and they beat the best constant answer.
    assert 0.15 <= final["clear_share"] <= 0.85, final
    assert final["reflection"] >= final["best_constant"] + 0.05, final
    # The 3D views pay: the decision beats the description.
    assert final["decision"] >= final["description"] + 0.10, final
