import contextlib
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys

import pytest
from datasets import load_dataset
from datasets.exceptions import DatasetGenerationError

import occ_hf  # noqa: F401  (registers occ-obman-cot)
from occ_hf.cot import CLASS_ATTRIBUTES, COT_ANSWER, COT_QUESTION, content_to_text
from occ_hf.obman import OCC_CLASSES, ObManFormatError, ObManSplit, UnknownClassError, load_meta
from occ_hf.views import view_name

from ..testing_utils import decompression_bomb_png
from .conftest import MISSING_VIEWS


@contextlib.contextmanager
def _raises_while_generating(error_type, match):
    """datasets wraps an error raised by the builder in DatasetGenerationError; the builder's own is its cause."""
    with pytest.raises(DatasetGenerationError) as info:
        yield
    cause = info.value.__cause__
    assert isinstance(cause, error_type), repr(cause)
    assert re.search(match, str(cause)), str(cause)


def _load(config, root, cache, **kwargs):
    return load_dataset("occ-obman-cot", config, data_dir=str(root), cache_dir=cache, **kwargs)


def _texts(messages):
    return [(turn["role"], content_to_text(turn["content"])) for turn in messages]


def test_reflection_rows_in_the_seed_strings(obman_root, hf_cache):
    ds = _load("reflection", obman_root, hf_cache)
    assert set(ds) == {"train", "test"} and ds["train"].num_rows == 24 and ds["test"].num_rows == 12
    samples = {s.sample_id: s for s in ObManSplit(obman_root, "train")}
    names = ds["train"].features["label"].names
    assert names == list(OCC_CLASSES)
    for row in ds["train"]:
        sample = samples[row["id"]]
        assert names[row["label"]] == sample.class_name
        assert row["occlusion"] == pytest.approx(sample.occlusion, abs=1e-6)
        assert row["clear"] == (sample.occlusion < 0.5)  # a generated root: clarity from occlusion by default
        assert _texts(row["messages"]) == [
            ("user", "What's the object in the hand?\n<image>"),
            ("assistant", f"The object is {sample.class_name}."),
            ("user", "Is it clear to identify the object in the hand?"),
            ("assistant", "Yes." if row["clear"] else "No."),
        ]
        assert len(row["images"]) == 1 and row["images"][0].size == (256, 256)


def test_description_and_cot_in_both_styles(obman_root, hf_cache):
    row = _load("description", obman_root, hf_cache, split="train")[0]
    label = OCC_CLASSES[row["label"]]
    question = "What's the object in the hand?\n<image>"
    assert _texts(row["messages"]) == [("user", question), ("assistant", f"The object is {label}.")]
    paper = _load("description", obman_root, hf_cache, split="train", prompt_style="paper")[0]
    expected = [
        ("user", "<image>\nIs the object in the hand round?"),
        ("assistant", "Yes" if CLASS_ATTRIBUTES[label]["round"] else "No"),
        ("user", "Is the object in the hand thin?"),
        ("assistant", "Yes" if CLASS_ATTRIBUTES[label]["thin"] else "No"),
        ("user", "Is the object in the hand long?"),
        ("assistant", "Yes" if CLASS_ATTRIBUTES[label]["long"] else "No"),
    ]
    assert _texts(paper["messages"]) == expected
    cot = _load("cot", obman_root, hf_cache, split="train")[0]
    assert _texts(cot["messages"]) == [("user", COT_QUESTION), ("assistant", COT_ANSWER)]
    paper_cot = _load("cot", obman_root, hf_cache, split="train", prompt_style="paper")[0]
    assert [text for _, text in _texts(paper_cot["messages"])][-2:] == [
        "What is the object in the hand?",
        f"This object is {label}",
    ]


def test_preference_pairs_are_balanced(obman_root, hf_cache):
    ds = _load("preference", obman_root, hf_cache, split="train", occlusion_threshold=0.3)
    chosen = [content_to_text(row["chosen"][0]["content"]) for row in ds]
    assert chosen.count("Yes.") == chosen.count("No.") > 0
    for row in ds:
        assert (
            content_to_text(row["prompt"][0]["content"]) == "<image>Is it clear to identify the object in the hand?\n"
        )
        assert content_to_text(row["chosen"][0]["content"]) == ("Yes." if row["clear"] else "No.")
        assert content_to_text(row["rejected"][0]["content"]) == ("No." if row["clear"] else "Yes.")
    # The larger side was down-sampled, never the smaller one.
    all_clear = [
        row["clear"] for row in _load("reflection", obman_root, hf_cache, split="train", occlusion_threshold=0.3)
    ]
    assert len(ds) == 2 * min(all_clear.count(True), all_clear.count(False))


def test_balance_clarity_downsamples_reflection_rows_as_the_preference_pairs(obman_root, hf_cache):
    kwargs = {"split": "train", "occlusion_threshold": 0.3}
    every = _load("reflection", obman_root, hf_cache, **kwargs)
    balanced = _load("reflection", obman_root, hf_cache, balance_clarity="downsample", **kwargs)
    answers = [content_to_text(row["messages"][-1]["content"]) for row in balanced]
    assert (
        answers.count("Yes.") == answers.count("No.") == min(every["clear"].count(True), every["clear"].count(False))
    )
    # The same ids as the preference pairs, which are balanced by default.
    assert sorted(balanced["id"]) == sorted(_load("preference", obman_root, hf_cache, **kwargs)["id"])
    unbalanced = _load("preference", obman_root, hf_cache, balance_clarity="none", **kwargs)
    assert sorted(unbalanced["id"]) == sorted(every["id"])
    # Configs without a clarity answer ignore it.
    description = _load("description", obman_root, hf_cache, balance_clarity="downsample", **kwargs)
    assert description.num_rows == every.num_rows
    with pytest.raises(ValueError, match="balance_clarity must be one of"):
        _load("reflection", obman_root, hf_cache, balance_clarity="upsample", **kwargs)


def test_test_and_decision_configs_with_views(obman_root, views_dir, hf_cache):
    test = _load("test", obman_root, hf_cache, split="test", views_dir=str(views_dir))
    assert test.num_rows == 12
    for row in test:
        assert (row["view"] is None) == (row["id"] in MISSING_VIEWS)
    decision = _load("decision", obman_root, hf_cache, split="test", views_dir=str(views_dir), on_missing_view="skip")
    assert sorted(decision["id"]) == sorted(set(test["id"]) - MISSING_VIEWS)
    missing = (
        r"3D view of sample 00000002: not found: .*00000002_0_obman_(train|test)_rgb_00000002\.jpg\.png; .*'skip'"
    )
    with _raises_while_generating(FileNotFoundError, missing):
        _load("decision", obman_root, hf_cache + "2", split="test", views_dir=str(views_dir))
    with _raises_while_generating(ValueError, "views_dir or views_url"):
        _load("decision", obman_root, hf_cache + "3", split="test")
    with _raises_while_generating(FileNotFoundError, r"nowhere: views folder not found; render or fetch"):
        _load("test", obman_root, hf_cache + "4", split="test", views_dir=str(views_dir.parent / "nowhere"))


def test_streaming_gives_the_same_rows(obman_root, hf_cache):
    built = _load("reflection", obman_root, hf_cache, split="test")
    streamed = list(_load("reflection", obman_root, hf_cache, split="test", streaming=True))
    assert [row["id"] for row in streamed] == built["id"]
    assert [row["messages"] for row in streamed] == built["messages"]


def test_deterministic_and_sharded(obman_root, tmp_path):
    one = _load("reflection", obman_root, str(tmp_path / "a"), split="train")
    again = _load("reflection", obman_root, str(tmp_path / "b"), split="train")
    parallel = _load("preference", obman_root, str(tmp_path / "c"), split="train", num_proc=2)
    serial = _load("preference", obman_root, str(tmp_path / "d"), split="train")
    assert one._fingerprint == again._fingerprint
    assert one.to_dict() == again.to_dict()
    assert parallel["id"] == serial["id"] and parallel["chosen"] == serial["chosen"]


def test_clarity_sources(obman_root, hf_cache, tmp_path):
    unclear = tmp_path / "wrong.json"
    unclear.write_text(json.dumps([{"answer": "00000001"}, {"answer": "00000004"}]))
    ds = _load("reflection", obman_root, hf_cache, split="train", unclear_ids=str(unclear))
    assert [row["id"] for row in ds if not row["clear"]] == ["00000001", "00000004"]
    labels = {s.sample_id: s.class_name for s in ObManSplit(obman_root, "train")}
    predictions = {i: f"The object is {c}." for i, c in labels.items()}
    predictions["00000003"] = "The object is knife." if labels["00000003"] != "knife" else "The object is jar."
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions))
    ds = _load("reflection", obman_root, hf_cache, split="train", predictions=str(path))
    assert [row["id"] for row in ds if not row["clear"]] == ["00000003"]
    # One file per split through the {split} template: the test split reads its own predictions.
    test_labels = {s.sample_id: s.class_name for s in ObManSplit(obman_root, "test")}
    (tmp_path / "train.json").write_text(json.dumps(predictions))
    (tmp_path / "test.json").write_text(json.dumps(dict.fromkeys(test_labels, "The object is nothing.")))
    both = _load("reflection", obman_root, hf_cache, predictions=str(tmp_path / "{split}.json"))
    assert [row["id"] for row in both["train"] if not row["clear"]] == ["00000003"]
    assert not any(both["test"]["clear"])
    seed_list = _load("reflection", obman_root, hf_cache, split="train", unclear_ids="seed")
    # The seed's list of 30,202 wrong training ids holds 00000001 and 00000002 but not 00000000.
    assert [row["clear"] for row in seed_list][:3] == [True, False, False]


def test_subsets(obman_root, hf_cache, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00000003\t0\t0\tx\n00000007\t0\t0\tx\n")
    ds = _load("reflection", obman_root, hf_cache, split="train", ids_file=str(ids_file))
    assert ds["id"] == ["00000003", "00000007"]
    assert _load("reflection", obman_root, hf_cache, split="train", max_samples=5)["id"] == [
        f"{i:08d}" for i in range(5)
    ]
    ranged = _load("reflection", obman_root, hf_cache, split="train", min_occlusion=0.3, max_occlusion=0.5)
    assert ranged.num_rows > 0 and all(0.3 <= o <= 0.5 + 1e-6 for o in ranged["occlusion"])


def _copy(obman_root, tmp_path):
    root = tmp_path / "obman"
    shutil.copytree(obman_root, root)
    return root


def test_corrupt_image_is_named_or_counted(obman_root, tmp_path, caplog):
    root = _copy(obman_root, tmp_path)
    image = root / "test" / "rgb" / "00000004.jpg"
    image.write_bytes(image.read_bytes()[:300])
    with _raises_while_generating(ObManFormatError, r"rgb/00000004\.jpg: not a readable image"):
        _load("reflection", root, str(tmp_path / "c1"), split="test")
    with caplog.at_level(logging.WARNING):
        ds = _load("reflection", root, str(tmp_path / "c2"), split="test", on_bad_sample="skip")
    assert ds.num_rows == 11 and "00000004" not in ds["id"]
    assert "{'bad file': 1}" in caplog.text


def test_unknown_class_is_counted_or_refused(obman_root, tmp_path, caplog):
    root = _copy(obman_root, tmp_path)
    import pickle

    meta_path = root / "test" / "meta" / "00000006.pkl"
    meta = load_meta(meta_path)
    meta["class_id"] = "03797390"
    meta_path.write_bytes(pickle.dumps(meta, protocol=3))
    with caplog.at_level(logging.WARNING):
        ds = _load("reflection", root, str(tmp_path / "c1"), split="test")
    assert ds.num_rows == 11 and "unknown class 03797390 (mug)" in caplog.text
    with _raises_while_generating(UnknownClassError, "mug"):
        _load("reflection", root, str(tmp_path / "c2"), split="test", on_unknown_class="error")


@pytest.mark.parametrize("order", ["occ_hf first", "datasets first"])
def test_registration_whatever_the_import_order(obman_root, tmp_path, order):
    imports = "import occ_hf; import datasets" if order == "occ_hf first" else "import datasets; import occ_hf"
    code = (
        f"{imports}; ds = datasets.load_dataset('occ-obman-cot', 'description', data_dir={str(obman_root)!r}, "
        f"split='test', cache_dir={str(tmp_path)!r}); print(ds.num_rows)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "12"


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"obj_visibility_ratio": "high"}, "obj_visibility_ratio is 'high'"), ({"class_id": None}, r"\['class_id'\]")],
)
def test_preference_balancing_names_a_damaged_meta_or_counts_it(obman_root, tmp_path, caplog, changes, match):
    # Balancing reads only the meta files, before generation: the same checks as the reader, the same choice.
    root = tmp_path / "obman"
    shutil.copytree(obman_root, root)
    meta_path = root / "train" / "meta" / "00000003.pkl"
    meta = {**load_meta(meta_path), **changes}
    with open(meta_path, "wb") as f:
        pickle.dump({key: value for key, value in meta.items() if value is not None}, f, protocol=3)
    with pytest.raises(ObManFormatError, match=rf"00000003\.pkl: .*{match}"):
        _load("preference", root, str(tmp_path / "a"), split="train", occlusion_threshold=0.3)
    with caplog.at_level(logging.WARNING):
        ds = _load(
            "preference", root, str(tmp_path / "b"), split="train", occlusion_threshold=0.3, on_bad_sample="skip"
        )
    assert "00000003" not in ds["id"] and ds.num_rows > 0
    assert "skipped {'bad file': 1}" in caplog.text


def test_a_hostile_view_is_a_missing_view_with_its_reason(obman_root, views_dir, tmp_path):
    # A bomb, a FIFO (which blocked the build forever) and a link to /dev/zero (read until memory ran out).
    views = tmp_path / "views"
    shutil.copytree(views_dir, views)
    names = {sample_id: next(views.glob(f"{sample_id}_0_obman_test_*")) for sample_id in ("00000000", "00000001")}
    names["00000000"].write_bytes(decompression_bomb_png())
    names["00000001"].unlink()
    os.mkfifo(names["00000001"])
    zero = next(views.glob("00000003_0_obman_test_*"))
    zero.unlink()
    zero.symlink_to("/dev/zero")
    for sample_id in MISSING_VIEWS:  # so that in the train split, built first, no view is missing
        shutil.copy(obman_root / "train" / "rgb_obj" / f"{sample_id}.jpg", views / view_name(sample_id, "train"))
    kwargs = {"split": "test", "views_dir": str(views)}
    test = _load("test", obman_root, str(tmp_path / "c1"), **kwargs)
    bad = {"00000000", "00000001", "00000003"}
    assert [row["view"] is None for row in test] == [i in bad | MISSING_VIEWS for i in test["id"]]
    decision = _load("decision", obman_root, str(tmp_path / "c2"), on_missing_view="skip", **kwargs)
    assert sorted(decision["id"]) == sorted(set(test["id"]) - bad - MISSING_VIEWS)
    with _raises_while_generating(FileNotFoundError, r"sample 00000000: .*image too large to decode"):
        _load("decision", obman_root, str(tmp_path / "c3"), **kwargs)


@pytest.mark.parametrize(
    ("config", "options", "match"),
    [
        (
            "decision",
            {"on_missing_view": "keep"},
            r"'decision' must be one of \['error', 'skip'\], got 'keep' \(a decision",
        ),
        ("test", {"on_missing_view": "bogus"}, r"on_missing_view for 'test' must be one of .*got 'bogus'"),
        ("reflection", {"on_bad_sample": "ignore"}, r"on_bad_sample must be 'error' or 'skip', got 'ignore'"),
        ("reflection", {"min_occlusion": 0.9, "max_occlusion": 0.2}, r"min_occlusion <= max_occlusion .*0\.9, 0\.2"),
        ("test", {"views_url": "http://127.0.0.1:9/views/"}, "views_dir .* or views_url .*, not both"),
        ("reflection", {"max_samples": -1}, r"max_samples must be a whole number >= 1 .*got -1"),
        ("reflection", {"max_samples": 0}, r"max_samples must be a whole number >= 1 .*got 0"),
        ("test", {"view_name": "{id}_{view}.png"}, r"view name template .*unknown field \{view\}"),
    ],
)
def test_options_given_as_keywords_are_validated(obman_root, views_dir, hf_cache, config, options, match):
    # load_dataset sets keyword options on a copy of a predefined config after its __post_init__ ran: the builder
    # validates them again before generating, and the error reaches the user unwrapped.
    with pytest.raises(ValueError, match=match):
        _load(config, obman_root, hf_cache, split="test", views_dir=str(views_dir), **options)


def test_no_rows_after_the_occlusion_filter_names_the_filter(obman_root, hf_cache):
    with pytest.raises(ValueError, match=r"min_occlusion=0\.99, max_occlusion=1\.0 keep none of its 24 samples"):
        _load("reflection", obman_root, hf_cache, min_occlusion=0.99, max_occlusion=1.0)


def test_no_rows_after_skips_names_the_skips(obman_root, hf_cache, tmp_path):
    empty_views = tmp_path / "no_views"
    empty_views.mkdir()
    with pytest.raises(ValueError, match=r"every one of its 24 samples was skipped .*on_missing_view='skip'"):
        _load("decision", obman_root, hf_cache, views_dir=str(empty_views), on_missing_view="skip")
