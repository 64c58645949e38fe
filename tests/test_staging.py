"""`occ_hf.staging`: contents staged beside a folder move in whole, replace a previous build's files, keep the rest."""

import pytest

from occ_hf.staging import move_into_place, staging_folder


def _staged_build(staging, files):
    build = staging / "build"
    for name, text in files.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_text(text)
    return build


def _tree(folder):
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("exists", [False, True])
def test_an_absent_or_empty_destination_becomes_the_staged_folder(tmp_path, exists):
    out = tmp_path / "out"
    if exists:
        out.mkdir()
    with staging_folder(out) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".out.") and staging.name.endswith(".partial")
        move_into_place(_staged_build(staging, {"a.txt": "new", "sub/b.txt": "new"}), out)
    assert _tree(out) == {"a.txt": "new", "sub/b.txt": "new"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # the staging folder is gone


def test_an_overwrite_replaces_the_previous_build_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    for name in ("a.txt", "old/shard.txt", "keep/shard.txt", "keep/notes.txt", "notes.txt"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old")
    (out / "b.txt").mkdir()  # a folder where the new build has a file
    with staging_folder(out) as staging:
        build = _staged_build(staging, {"a.txt": "new", "b.txt": "new", "keep/new.txt": "new"})
        move_into_place(build, out, previous=[out / "old" / "shard.txt", out / "keep" / "shard.txt"])
    assert _tree(out) == {
        "a.txt": "new",
        "b.txt": "new",
        "keep/new.txt": "new",
        "keep/notes.txt": "old",
        "notes.txt": "old",
    }
    assert not (out / "old").exists()  # a folder that only the previous build's files filled


def test_a_failure_leaves_the_destination_as_it_was_and_no_staging_behind(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    with pytest.raises(OSError, match="disk full"), staging_folder(out) as staging:
        _staged_build(staging, {"a.txt": "new"})
        raise OSError("disk full")
    assert _tree(out) == {"a.txt": "old"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
