import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from occ_hf.obman import (
    OBMAN_INTRINSICS,
    OCC_CLASSES,
    SYNSET_TO_CLASS,
    ObManFormatError,
    ObManSplit,
    UnknownClassError,
    load_meta,
)
from occ_hf.obman.camera import BLENDER_TO_OPENCV
from occ_hf.obman.reader import HAND_SEGM_VALUES
from occ_hf.rendering import rasterize

from ..testing_utils import decompression_bomb_png


def _copy_root(synth_obman, tmp_path):
    """A private copy of the generated root, for tests that damage files."""
    root, summary = synth_obman
    shutil.copytree(root, tmp_path / "obman")
    return tmp_path / "obman", tmp_path / "obman" / summary.shapenet_root.name


def _rewrite_meta(path, **changes):
    meta = load_meta(path)
    meta.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del meta[key]
    with open(path, "wb") as f:
        pickle.dump(meta, f, protocol=3)


def test_sample_list_is_the_sorted_meta_folder(synth_split):
    assert synth_split.ids == [f"{i:08d}" for i in range(24)]
    assert len(synth_split) == 24
    assert synth_split[3].sample_id == "00000003"


def test_every_field(synth_split, synth_obman):
    _, summary = synth_obman
    samples = list(synth_split)
    assert [s.sample_id for s in samples] == synth_split.ids
    assert sorted({s.class_name for s in samples}) == sorted(summary.class_counts)
    for sample in samples:
        assert sample.split == "test"
        assert sample.rgb_path.name == f"{sample.sample_id}.jpg" and sample.rgb_path.parent.name == "rgb"
        assert sample.segm_path.is_file() and sample.meta_path.is_file() and sample.depth_path.is_file()
        assert sample.class_name in OCC_CLASSES and SYNSET_TO_CLASS[sample.class_id] == sample.class_name
        assert sample.mesh_path == (
            summary.shapenet_root / sample.class_id / sample.shapenet_id / "models" / "model_normalized.obj"
        )
        np.testing.assert_array_equal(sample.camera.intrinsics, OBMAN_INTRINSICS)
        assert (sample.camera.height, sample.camera.width) == (256, 256)
        assert sample.affine_transform.shape == (4, 4)
        # ObMan's writer folds the scale into the transform: its columns have the length obj_scale.
        np.testing.assert_allclose(
            np.linalg.norm(sample.affine_transform[:3, :3], axis=0), sample.obj_scale, rtol=1e-5
        )
        assert sample.hand_mask.shape == sample.object_mask.shape == (256, 256)
        assert sample.hand_mask.any() and sample.object_mask.any()
        assert not (sample.object_mask & ~sample.amodal_object_mask).any(), "visible object outside the amodal mask"
        assert sample.occlusion_source == "masks"
        assert sample.meta["side"] == "right"
        assert set(sample.meta) >= {"coords_2d", "coords_3d", "verts_3d", "hand_pose", "pca_pose", "depth_min"}


def test_occlusion_matches_the_generator(synth_split, synth_obman):
    _, summary = synth_obman
    occlusions = [sample.occlusion for sample in synth_split]
    np.testing.assert_allclose(occlusions, summary.occlusion, atol=1e-12)
    for sample in synth_split:
        assert sample.occlusion == pytest.approx(1.0 - sample.meta["obj_visibility_ratio"], abs=1e-12)
        visible = (sample.object_mask & sample.amodal_object_mask).sum()
        assert sample.occlusion == pytest.approx(1 - visible / sample.amodal_object_mask.sum())


def test_mesh_with_affine_transform_lands_on_the_amodal_mask(synth_split):
    """The ObMan convention (model -> Blender camera by affine_transform, then cam_extr) reproduces segm channel 2."""
    for sample in list(synth_split)[:8]:
        mesh = trimesh.load(sample.mesh_path, process=False, force="mesh")
        transform = sample.object_to_camera
        verts = mesh.vertices @ transform[:3, :3].T + transform[:3, 3]
        fragments = rasterize(
            [torch.tensor(verts, dtype=torch.float32)],
            [torch.tensor(mesh.faces)],
            torch.tensor(sample.camera.intrinsics, dtype=torch.float32),
            256,
            256,
        )
        rendered = fragments.mask[0].numpy()
        amodal = sample.amodal_object_mask
        iou = (rendered & amodal).sum() / (rendered | amodal).sum()
        assert iou >= 0.99, (sample.sample_id, iou)


def test_joints_follow_the_loaders_projection(synth_split):
    """coords_2d = K (cam_extr coords_3d), the loaders' get_coords_2d after their cam_extr rotation."""
    for sample in synth_split:
        joints = sample.meta["coords_3d"].astype(np.float64) @ BLENDER_TO_OPENCV.T
        np.testing.assert_allclose(sample.camera.project(joints), sample.meta["coords_2d"], atol=1e-3)
        assert sample.meta["coords_3d"].shape == (21, 3)


def test_depth_decodes_with_the_loaders_formula(synth_split):
    """ObMan's loaders decode depth with meta depth_min/depth_max swapped; the decoded range is the true one."""
    for sample in list(synth_split)[:6]:
        image = np.asarray(Image.open(sample.depth_path))[..., ::-1][..., 0].astype(np.float64)
        assert image.max() == 255
        depth_min, depth_max = float(sample.meta["depth_min"]), float(sample.meta["depth_max"])
        decoded = (image - 1) / 254 * (depth_min - depth_max) + depth_max
        foreground = image > 0
        assert decoded[foreground].min() == pytest.approx(min(depth_min, depth_max), abs=1e-6)
        assert decoded[foreground].max() == pytest.approx(max(depth_min, depth_max), abs=1e-6)
        # The hand is in front of the object: where it is visible, it is nearer than the visible object on average.
        assert decoded[sample.hand_mask].mean() < decoded[sample.object_mask].mean()
        assert np.isin(np.asarray(Image.open(sample.segm_path))[..., 2][sample.hand_mask], HAND_SEGM_VALUES).all()


def test_ids_argument_reads_exactly_those(synth_obman):
    root, _ = synth_obman
    split = ObManSplit(root, "test", ids=[5, "00000002"])
    assert [s.sample_id for s in split] == ["00000005", "00000002"]


def test_not_an_obman_root(tmp_path):
    with pytest.raises(ObManFormatError, match="meta"):
        ObManSplit(tmp_path, "test")


def test_unknown_class_errors_or_is_counted(synth_obman, tmp_path):
    root, shapenet_root = _copy_root(synth_obman, tmp_path)
    meta_path = root / "test" / "meta" / "00000004.pkl"
    _rewrite_meta(meta_path, class_id="03797390")  # ObMan's mugs are not an OCC class
    with pytest.raises(UnknownClassError, match=r"00000004\.pkl.*mug.*on_unknown_class='skip'"):
        list(ObManSplit(root, "test"))
    split = ObManSplit(root, "test", on_unknown_class="skip")
    samples = list(split)
    assert len(samples) == 23 and "00000004" not in {s.sample_id for s in samples}
    assert split.skipped == {"unknown class 03797390 (mug)": 1}
    assert "mug" in split.skipped_ids["00000004"]


def test_truncated_meta_names_the_file(synth_obman, tmp_path):
    root, _ = _copy_root(synth_obman, tmp_path)
    meta_path = root / "test" / "meta" / "00000006.pkl"
    meta_path.write_bytes(meta_path.read_bytes()[:100])
    with pytest.raises(ObManFormatError, match=r"00000006\.pkl: truncated or corrupt"):
        list(ObManSplit(root, "test"))
    split = ObManSplit(root, "test", on_bad_sample="skip")
    assert len(list(split)) == 23
    assert split.skipped == {"bad file": 1}
    assert "00000006.pkl" in split.skipped_ids["00000006"]


@pytest.mark.parametrize(
    ("folder", "name", "match"),
    [
        ("segm", "00000001.png", r"segm/00000001\.png: segmentation file not found"),
        ("rgb", "00000001.jpg", r"rgb/00000001\.jpg: image not found"),
        ("meta", "00000001.pkl", r"meta/00000001\.pkl: meta file not found"),
    ],
)
def test_missing_file_names_the_file(synth_obman, tmp_path, folder, name, match):
    root, _ = _copy_root(synth_obman, tmp_path)
    split = ObManSplit(root, "test")  # lists ids before the file goes
    os.remove(root / "test" / folder / name)
    with pytest.raises(ObManFormatError, match=match):
        split.read("00000001")


def test_corrupt_segm_names_the_file(synth_obman, tmp_path):
    root, _ = _copy_root(synth_obman, tmp_path)
    segm = root / "test" / "segm" / "00000002.png"
    segm.write_bytes(segm.read_bytes()[:60])
    with pytest.raises(ObManFormatError, match=r"segm/00000002\.png: not a readable image"):
        ObManSplit(root, "test").read(2)


def test_missing_mesh_names_the_file(synth_obman, tmp_path):
    root, shapenet_root = _copy_root(synth_obman, tmp_path)
    sample = ObManSplit(root, "test", shapenet_root=shapenet_root).read(0)
    os.remove(sample.mesh_path)
    with pytest.raises(ObManFormatError, match=r"model_normalized\.obj: object mesh of sample .*00000000\.pkl"):
        ObManSplit(root, "test", shapenet_root=shapenet_root).read(0)


def test_missing_meta_key_names_file_and_key(synth_obman, tmp_path):
    root, _ = _copy_root(synth_obman, tmp_path)
    _rewrite_meta(root / "test" / "meta" / "00000003.pkl", affine_transform=None)
    with pytest.raises(ObManFormatError, match=r"00000003\.pkl: missing meta keys \['affine_transform'\]"):
        ObManSplit(root, "test").read(3)


def test_occlusion_falls_back_to_meta_without_amodal_mask(synth_obman, tmp_path):
    root, _ = _copy_root(synth_obman, tmp_path)
    segm_path = root / "test" / "segm" / "00000005.png"
    segm = np.asarray(Image.open(segm_path)).copy()
    segm[..., 0] = 0  # PIL's R is OpenCV's channel 2, the amodal object mask
    Image.fromarray(segm).save(segm_path)
    sample = ObManSplit(root, "test").read(5)
    assert sample.amodal_object_mask is None and sample.occlusion_source == "meta"
    assert sample.occlusion == pytest.approx(1.0 - sample.meta["obj_visibility_ratio"])


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"obj_visibility_ratio": "high"}, r"00000005\.pkl: obj_visibility_ratio is 'high'; expected .* 0 and 1"),
        ({"obj_visibility_ratio": float("nan")}, r"00000005\.pkl: obj_visibility_ratio is nan"),
        ({"obj_visibility_ratio": 2.0}, r"00000005\.pkl: obj_visibility_ratio is 2\.0"),
        ({"affine_transform": "eye(4)"}, r"00000005\.pkl: affine_transform is not a 4x4 matrix of numbers"),
    ],
)
def test_damaged_meta_values_name_the_file(synth_obman, tmp_path, changes, match):
    # Without an amodal mask, occlusion comes from the meta's visibility ratio, so a bad one must not pass unseen.
    root, _ = _copy_root(synth_obman, tmp_path)
    segm_path = root / "test" / "segm" / "00000005.png"
    segm = np.asarray(Image.open(segm_path)).copy()
    segm[..., 0] = 0
    Image.fromarray(segm).save(segm_path)
    _rewrite_meta(root / "test" / "meta" / "00000005.pkl", **changes)
    with pytest.raises(ObManFormatError, match=match):
        ObManSplit(root, "test").read(5)
    split = ObManSplit(root, "test", on_bad_sample="skip")
    assert "00000005" not in {sample.sample_id for sample in split} and split.skipped == {"bad file": 1}


def test_a_meta_without_class_id_names_the_file(tmp_path):
    with pytest.raises(ObManFormatError, match=r"m\.pkl: missing meta keys \['class_id'\]"):
        ObManSplit.class_name_of({"sample_id": "x"}, tmp_path / "m.pkl")


def _assert_named_and_skipped(root, sample_id, match):
    """Reading the split fails naming the file; with on_bad_sample='skip' only that sample goes, counted."""
    with pytest.raises(ObManFormatError, match=match):
        list(ObManSplit(root, "test"))
    split = ObManSplit(root, "test", on_bad_sample="skip")
    assert [sample.sample_id for sample in split] == [i for i in split.ids if i != sample_id]
    assert split.skipped == {"bad file": 1}
    assert re.search(match, split.skipped_ids[sample_id])


def _set_meta(path, **values):
    meta = load_meta(path)
    meta.update(values)
    path.write_bytes(pickle.dumps(meta, protocol=3))


@pytest.mark.parametrize(
    ("obj_scale", "shown"), [(None, "None"), ("abc", "'abc'"), (float("nan"), "nan"), (-1.0, "-1.0"), (True, "True")]
)
def test_a_bad_obj_scale_is_named_and_skippable(synth_obman, tmp_path, obj_scale, shown):
    root, _ = _copy_root(synth_obman, tmp_path)
    _set_meta(root / "test" / "meta" / "00000002.pkl", obj_scale=obj_scale)
    match = rf"00000002\.pkl: obj_scale is {re.escape(shown)}; expected a positive number"
    _assert_named_and_skipped(root, "00000002", match)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_affine_transform_is_named_and_skippable(synth_obman, tmp_path, value):
    root, _ = _copy_root(synth_obman, tmp_path)
    meta_path = root / "test" / "meta" / "00000003.pkl"
    affine = load_meta(meta_path)["affine_transform"].copy()
    affine[1, 3] = value
    _set_meta(meta_path, affine_transform=affine)
    _assert_named_and_skipped(root, "00000003", r"00000003\.pkl: affine_transform holds NaN or infinite values")


def test_a_segm_of_another_size_than_its_image_is_named_and_skippable(synth_obman, tmp_path):
    root, _ = _copy_root(synth_obman, tmp_path)
    segm_path = root / "test" / "segm" / "00000004.png"
    Image.open(segm_path).resize((16, 16), Image.NEAREST).save(segm_path)
    _assert_named_and_skipped(
        root, "00000004", r"segm/00000004\.png: segmentation is 16x16 but its image .*rgb/00000004\.jpg is 256x256"
    )


def test_a_segm_saved_as_jpeg_is_named_and_skippable(synth_obman, tmp_path):
    # JPEG shifts the label values at every edge, so the masks (and the occlusion) change without an error.
    root, _ = _copy_root(synth_obman, tmp_path)
    segm_path = root / "test" / "segm" / "00000005.png"
    Image.open(segm_path).convert("RGB").save(segm_path, format="JPEG", quality=95)
    _assert_named_and_skipped(root, "00000005", r"segm/00000005\.png: segmentation is a JPEG file, not a PNG")


@pytest.mark.parametrize("content", [b"", b"<html><body>Access Denied</body></html>"])
def test_an_rgb_that_is_not_an_image_is_named_and_skippable(synth_obman, tmp_path, content):
    root, _ = _copy_root(synth_obman, tmp_path)
    (root / "test" / "rgb" / "00000006.jpg").write_bytes(content)
    _assert_named_and_skipped(root, "00000006", r"rgb/00000006\.jpg: not a readable image")


@pytest.mark.parametrize(("folder", "name"), [("rgb", "00000007.jpg"), ("segm", "00000007.png")])
def test_a_decompression_bomb_is_named_and_skippable(synth_obman, tmp_path, folder, name):
    root, _ = _copy_root(synth_obman, tmp_path)
    (root / "test" / folder / name).write_bytes(decompression_bomb_png())
    _assert_named_and_skipped(root, "00000007", rf"{folder}/{re.escape(name)}: image too large to decode")


@pytest.mark.parametrize(
    ("folder", "name", "kind"),
    [
        ("meta", "00000008.pkl", "fifo"),
        ("segm", "00000008.png", "fifo"),
        ("rgb", "00000008.jpg", "fifo"),
        ("segm", "00000008.png", "dev_zero"),
        ("meta", "00000008.pkl", "dev_zero"),
    ],
)
def test_a_fifo_or_device_in_place_of_a_file_is_named_and_skippable(synth_obman, tmp_path, folder, name, kind):
    # A FIFO blocked the build forever and a link to /dev/zero was read until memory ran out.
    root, _ = _copy_root(synth_obman, tmp_path)
    path = root / "test" / folder / name
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    shown = "a FIFO" if kind == "fifo" else "a character device"
    _assert_named_and_skipped(root, "00000008", rf"{folder}/{re.escape(name)}: {shown}.*, not a regular file")


@pytest.mark.parametrize("shapenet_id", ["../../../etc", "a/b", "", "x" * 200])
def test_a_sample_id_that_is_not_a_shapenet_id_is_named_and_skippable(synth_obman, tmp_path, shapenet_id):
    # The meta's sample_id becomes a folder under shapenet_root: '../' would point outside it.
    root, _ = _copy_root(synth_obman, tmp_path)
    _set_meta(root / "test" / "meta" / "00000006.pkl", sample_id=shapenet_id)
    _assert_named_and_skipped(root, "00000006", r"00000006\.pkl: sample_id .* is not a ShapeNet model id")
