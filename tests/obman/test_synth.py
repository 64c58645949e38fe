import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from occ_hf.obman import OCC_CLASSES, ObManSplit, generate_obman_split, read_id_list, read_segm
from occ_hf.obman.shapes import make_object_mesh

from ..testing_utils import seed_file


def _digest(root, split="test"):
    """Hash of every file of a split, by relative path."""
    split_dir = root / split
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(split_dir.rglob("*"))
        if path.is_file()
    }


def test_deterministic_for_a_seed_whatever_the_batching(tmp_path):
    generate_obman_split(tmp_path / "a", n=6, seed=3, split="test", batch_size=6, progress=False)
    generate_obman_split(tmp_path / "b", n=6, seed=3, split="test", batch_size=2, num_proc=2, progress=False)
    generate_obman_split(tmp_path / "c", n=6, seed=4, split="test", progress=False)
    digest_a = _digest(tmp_path / "a")
    assert len(digest_a) == 6 * 6  # meta, rgb, rgb_obj, rgb_hand, segm, depth
    assert digest_a == _digest(tmp_path / "b")
    digest_c = _digest(tmp_path / "c")
    assert all(digest_a[name] != digest_c[name] for name in digest_a if "/meta/" in name)


def test_ids_from_the_seed_test_list(tmp_path):
    """The seed's 6,227-image test list gives exactly those ids, in ObMan's layout."""
    test_list = seed_file("obman_view_test_all.txt")
    ids, classes = read_id_list(test_list)
    assert len(ids) == 6227 and ids[:3] == ["00000000", "00000003", "00000004"] and classes == [None] * 6227
    summary = generate_obman_split(tmp_path, split="test", ids=ids, num_proc=2, batch_size=64, progress=False)
    assert summary.num_samples == 6227
    split = ObManSplit(tmp_path, "test")
    assert split.ids == sorted(ids)
    for folder, suffix in (("rgb", ".jpg"), ("segm", ".png"), ("depth", ".png")):
        assert sorted(p.name for p in (tmp_path / "test" / folder).iterdir()) == [i + suffix for i in sorted(ids)]
    assert sum(summary.class_counts.values()) == 6227 and set(summary.class_counts) == set(OCC_CLASSES)


def test_ids_and_classes_from_seed_jsonl(tmp_path):
    path = seed_file("train_Q1_10140.head20.jsonl")
    ids, classes = read_id_list(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert ids == [row["id"] for row in rows]
    assert classes == [row["conversations"][1]["value"][len("The object is ") : -1] for row in rows]
    generate_obman_split(tmp_path, split="train", ids=ids[:5], classes=classes[:5], progress=False)
    assert [s.class_name for s in ObManSplit(tmp_path, "train", ids=ids[:5])] == classes[:5]


def test_id_lists_of_every_seed_format():
    unclear_ids, _ = read_id_list(seed_file("obman_train_checkpoint-30000_wrong_1_moho.json"))
    assert len(unclear_ids) == 30202 and unclear_ids[0] == "00000001"
    predictions, _ = read_id_list(seed_file("predictions-mpo.head100.json"))
    assert predictions[:2] == ["00000003", "00000004"] and len(predictions) == 100
    dpo_ids, dpo_classes = read_id_list(seed_file("train_Q1_Q6_balanced_dpo_10140.head40.jsonl"))
    assert len(dpo_ids) == len(dpo_classes) > 0


def test_bad_id_list(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("00000001\nnot-an-id\n")
    with pytest.raises(ValueError, match=r"ids\.txt: 'not-an-id' is not an ObMan sample id"):
        read_id_list(path)


def test_occlusion_follows_the_requested_range(tmp_path):
    summary = generate_obman_split(tmp_path, n=24, seed=1, split="val", occlusion_range=(0.3, 0.35), progress=False)
    occlusion = np.asarray(summary.occlusion)
    # The hand slides in whole pixels and cannot always reach the target on the largest objects.
    assert np.mean(np.abs(occlusion - 0.325) < 0.06) >= 0.8, occlusion
    assert occlusion.max() < 0.45


def test_classes_are_distinguishable_by_shape():
    """A nearest-centroid classifier on sorted bounding-box proportions separates the 8 mesh families."""
    rng = np.random.default_rng(0)

    def signature(name):
        extents = np.sort(make_object_mesh(name, rng).extents)
        return extents / extents[-1]

    train = {name: np.mean([signature(name) for _ in range(10)], axis=0) for name in OCC_CLASSES}
    correct = 0
    for name in OCC_CLASSES:
        for _ in range(10):
            s = signature(name)
            correct += min(train, key=lambda other: np.linalg.norm(train[other] - s)) == name
    assert correct / (10 * len(OCC_CLASSES)) >= 0.95


def test_unknown_class_in_request(tmp_path):
    with pytest.raises(ValueError, match="Unknown classes"):
        generate_obman_split(tmp_path, ids=["1"], classes=["mug"], progress=False)
    with pytest.raises(ValueError, match="n must be at least 1"):
        generate_obman_split(tmp_path / "none", n=-3, progress=False)
    assert not (tmp_path / "none").exists()  # refused before anything is written


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("ids.txt", b"00000001\n\xff\xfe\n", r"ids\.txt: not a text file"),
        ("ids.txt", b"00000001\n-5\n", r"ids\.txt: '-5' is not an ObMan sample id"),
        ("ids.txt", b"hello world\n", r"ids\.txt: 'hello' is not an ObMan sample id"),
        ("ids.json", b'{"a": ', r"ids\.json: not valid JSON"),
        ("ids.json", b"42", r"ids\.json: expected a list of ids or an \{id: \.\.\.\} mapping, got int"),
        ("ids.json", b'[{"question": "?"}]', r"ids\.json: .* has no 'answer'"),
        ("ids.json", b"[true]", r"ids\.json: True is not an ObMan sample id"),
        ("ids.json", b"[3.0]", r"ids\.json: 3\.0 is not an ObMan sample id"),
        ("ids.json", b'[{"answer": null}]', r"ids\.json: None is not an ObMan sample id"),
        ("ids.json", b'{"00000001": 1, "00000001": 2}', r"ids\.json: key '00000001' appears twice"),
        ("ids.jsonl", b'{"id": "00000001"}\n[1, 2]\n', r"ids\.jsonl:2: expected a JSON object per line"),
    ],
)
def test_a_bad_id_list_names_the_file_and_what_is_wrong(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_id_list(tmp_path / name)


def test_an_existing_split_is_refused_or_replaced_whole(tmp_path):
    generate_obman_split(tmp_path, n=6, seed=0, split="test", progress=False)
    before = _digest(tmp_path)
    with pytest.raises(FileExistsError, match=r"test: already holds a split \(6 meta files\).*--overwrite"):
        generate_obman_split(tmp_path, n=2, seed=1, split="test", progress=False)
    assert _digest(tmp_path) == before  # refused before anything was written
    meshes_before = sorted((tmp_path / "ShapeNetCore.v2").rglob("*.obj"))

    generate_obman_split(tmp_path, n=2, seed=1, split="test", progress=False, overwrite=True)
    assert ObManSplit(tmp_path, "test").ids == ["00000000", "00000001"]  # no stale sample left
    assert len(_digest(tmp_path)) == 2 * 6
    provenance = json.loads((tmp_path / "occ_hf_synth.json").read_text())
    assert provenance["splits"]["test"]["num_samples"] == 2
    meshes = sorted((tmp_path / "ShapeNetCore.v2").rglob("*.obj"))
    assert len(meshes_before) == 6 and len(meshes) == 2  # the old samples' meshes went with them


def test_overwrite_never_deletes_a_split_synth_obman_did_not_write(tmp_path):
    generate_obman_split(tmp_path, n=2, seed=0, split="test", progress=False)
    (tmp_path / "occ_hf_synth.json").unlink()  # as in a real ObMan root
    with pytest.raises(FileExistsError, match="not written by synth-obman"):
        generate_obman_split(tmp_path, n=2, seed=0, split="test", progress=False, overwrite=True)
    assert len(ObManSplit(tmp_path, "test").ids) == 2


def test_an_unreachable_occlusion_is_counted_and_warned(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="occ_hf.obman.synth"):
        summary = generate_obman_split(
            tmp_path, n=4, seed=0, split="test", occlusion_range=(0.98, 0.99), progress=False
        )
    assert summary.to_dict()["num_off_target"] == summary.num_off_target > 0
    assert f"{summary.num_off_target} of 4 samples missed the requested occlusion [0.98, 0.99]" in caplog.text


def _principal_axis_degrees(mask: np.ndarray) -> float:
    """Angle of a mask's long axis from the image's vertical, in degrees (0-90)."""
    ys, xs = np.nonzero(mask)
    covariance = np.cov(np.stack([xs, ys]))
    x, y = np.linalg.eigh(covariance)[1][:, -1]
    return float(np.degrees(np.arctan2(abs(x), abs(y))))


def test_max_roll_keeps_objects_upright_and_plain_backgrounds_are_grey(tmp_path):
    classes = ["bottle", "remote"] * 3  # both long along the mesh's own (y) axis
    kept = generate_obman_split(
        tmp_path / "upright", ids=range(6), classes=classes, max_roll=0, background="plain", progress=False
    )
    turned = generate_obman_split(tmp_path / "any", ids=range(6), classes=classes, seed=1, progress=False)
    angles = {}
    for name, summary in (("upright", kept), ("any", turned)):
        split = ObManSplit(summary.root, "train")
        angles[name] = [_principal_axis_degrees(read_segm(s.segm_path)[..., 2] == 100) for s in split]
    # Tilting towards the camera and spinning about its own axis leave such an object's axis vertical in the image.
    assert max(angles["upright"]) < 10, angles
    assert max(angles["any"]) > 20, angles

    for sample in ObManSplit(tmp_path / "upright", "train"):
        rgb = np.asarray(Image.open(sample.rgb_path), dtype=float)
        background = read_segm(sample.segm_path)[..., 0] == 0
        level = rgb[background].mean(axis=0)
        # One grey level (JPEG keeps the channels within a few values of each other), between 0.35 and 0.65.
        assert np.ptp(level) < 4 and 0.33 * 255 < level.mean() < 0.67 * 255, level
    provenance = json.loads((tmp_path / "upright" / "occ_hf_synth.json").read_text())["splits"]["train"]
    assert provenance["max_roll"] == 0 and provenance["background"] == "plain"


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"background": "photo"}, r"background must be one of \['gradient', 'plain', 'dark'\], got 'photo'"),
        ({"max_roll": 200}, "max_roll must be between 0 and 180"),
    ],
)
def test_scene_settings_are_checked_before_anything_is_written(tmp_path, setting, match):
    with pytest.raises(ValueError, match=match):
        generate_obman_split(tmp_path / "out", n=2, progress=False, **setting)
    assert not (tmp_path / "out").exists()
