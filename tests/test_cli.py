import json

import pytest

from occ_hf.cli import main, run
from occ_hf.import_utils import package_version
from occ_hf.obman import generate_obman_split


def test_synth_obman_then_summary(tmp_path, capsys):
    out = tmp_path / "obman"
    main(["synth-obman", str(out), "--n", "5", "--split", "test", "--seed", "2", "--max-occlusion", "0.5"])
    written = json.loads(capsys.readouterr().out)
    assert written["num_samples"] == 5 and written["occlusion_max"] < 0.6
    main(["obman-summary", str(out), "--split", "test", "--shapenet_root", str(out / "ShapeNetCore.v2")])
    printed = capsys.readouterr().out
    assert "5 of 5 samples read" in printed and "skipped: none" in printed


def test_demo_runs_every_step_end_to_end(tmp_path, capsys):
    # Too little to learn anything: the run checks the steps and files; tests/test_demo.py checks the learning.
    steps = ["--sft1_steps", "2", "--sft2_steps", "2", "--mpo_steps", "2"]
    main(["demo", "--output_dir", str(tmp_path), "--num_train", "6", "--num_test", "4", "--num_proc", "1", *steps])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["splits"]["train"]["num_read"] == 6 and summary["splits"]["test"]["num_read"] == 4
    assert summary["views"]["test"]["rendered"] == 4 and summary["views"]["train"]["missing"] == {}
    # Two SFT steps answer no training image right: one clarity label for all, so no preference pairs and no MPO.
    assert list(summary["stages"]) == ["before", "sft1", "sft2"] and "mpo" in summary["skipped"]
    configs = {"description", "decision", "reflection", "test"}
    assert {p.name for p in (tmp_path / "dataset").iterdir()} == {"README.md", *configs}
    report = json.loads((tmp_path / "sft2" / "eval" / "report.json").read_text())
    # Scored over all 4 test images (Decision's denominator is every image).
    assert report["metrics"]["decision"]["total"] == 4
    printed = capsys.readouterr().out
    assert "6 of 6 samples read" in printed and "| sft2 |" in printed and "MPO will be skipped" in printed


def test_env(capsys):
    main(["env"])
    printed = capsys.readouterr().out
    assert "- transformers: 5." in printed and "pytorch3d (extra render)" in printed
    assert f"- protobuf (extra convert): {package_version('protobuf')}" in printed


def test_top_level_help_imports_no_heavy_library():
    """`occ-hf --help` builds no subcommand's options, so it imports neither torch nor transformers."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom occ_hf.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "build-dataset" in result.stdout and "convert-checkpoint" in result.stdout


def test_the_command_reports_bad_input_in_one_line(tmp_path, capsys):
    assert run(["push", str(tmp_path / "none"), "org/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"occ-hf: error: FileNotFoundError: {tmp_path / 'none'}: no such folder")
    assert "Traceback" not in err and len(err.splitlines()) == 2


def test_the_command_reports_the_builders_error_not_datasets_wrapper(tmp_path, capsys):
    # datasets wraps what the builder raises in DatasetGenerationError; the user reads the builder's own message.
    root = tmp_path / "obman"
    generate_obman_split(root, n=2, seed=0, split="test", progress=False)
    (tmp_path / "views").mkdir()
    argv = ["build-dataset", "--obman-root", str(root), "--config", "decision", "--views-dir", str(tmp_path / "views")]
    assert run([*argv, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "occ-hf: error: FileNotFoundError: 3D view of sample 00000000: not found: " in err
    assert "or pass on_missing_view='skip'" in err


def test_the_command_keeps_the_traceback_of_a_bug_or_when_asked(tmp_path, monkeypatch):
    import occ_hf.push

    with monkeypatch.context() as patch:
        patch.setenv("OCC_HF_TRACEBACK", "1")
        with pytest.raises(FileNotFoundError, match="no such folder"):
            run(["push", str(tmp_path / "none"), "org/x"])

    def broken(*args, **kwargs):
        raise AttributeError("a bug, not bad input")

    monkeypatch.setattr(occ_hf.push, "push_model", broken)
    with pytest.raises(AttributeError, match="a bug"):
        run(["push", str(tmp_path), "org/x"])
