import os
import shutil

from occ_hf.cli import run
from occ_hf.obman import ObManSplit, summarize_split


def test_summary_counts_an_rgb_that_is_not_an_image_as_a_skip(synth_obman, tmp_path):
    # The summary never opened the rgb, so a zero-byte file or an HTML page was counted as read.
    root = tmp_path / "obman"
    shutil.copytree(synth_obman[0], root)
    (root / "test" / "rgb" / "00000001.jpg").write_bytes(b"")
    (root / "test" / "rgb" / "00000002.jpg").write_bytes(b"<html>Access Denied</html>")
    split = ObManSplit(root, "test", on_bad_sample="skip")
    summary = summarize_split(split)
    assert summary["num_read"] == 22 and summary["skipped"] == {"bad file": 2}
    assert "rgb/00000001.jpg: not a readable image" in split.skipped_ids["00000001"]


def test_summary_of_a_split_with_a_fifo_ends_with_one_line(synth_obman, tmp_path, capsys):
    # A FIFO in place of a meta file hung `occ-hf obman-summary` forever.
    root = tmp_path / "obman"
    shutil.copytree(synth_obman[0], root)
    meta = root / "test" / "meta" / "00000003.pkl"
    meta.unlink()
    os.mkfifo(meta)
    assert run(["obman-summary", str(root), "--split", "test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"occ-hf: error: ObManFormatError: {meta}: a FIFO (named pipe), not a regular file")
    assert run(["obman-summary", str(root), "--split", "test", "--on_bad_sample", "skip"]) == 0
    assert "23 of 24 samples read" in capsys.readouterr().out
