import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from occ_hf.cli import main
from occ_hf.obman import ObManSplit
from occ_hf.views import (
    GroundTruthMesh,
    MeshFolder,
    ObjectMesh,
    ObjectReconstructor,
    load_mesh,
    orbit_view_name,
    render_split_views,
    render_views,
    view_name,
)


def _iou(a, b) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


class ShrunkGroundTruth:
    """A stand-in for a user's model: the known mesh at 80% of its size about its centre, built from the image."""

    def __init__(self):
        self.calls = []

    def reconstruct(self, image: Image.Image, sample) -> ObjectMesh:
        self.calls.append((image.size, image.mode, sample.sample_id))
        known = GroundTruthMesh().reconstruct(image, sample)
        vertices = known.camera_vertices()
        centre = (vertices.min(0) + vertices.max(0)) / 2
        return ObjectMesh(centre + 0.8 * (vertices - centre), known.faces)


def test_builtin_reconstructors_follow_the_protocol(tmp_path):
    assert isinstance(GroundTruthMesh(), ObjectReconstructor)
    assert isinstance(MeshFolder(tmp_path), ObjectReconstructor)
    assert isinstance(ShrunkGroundTruth(), ObjectReconstructor)


def test_ground_truth_mesh_is_posed_on_the_sample(synth_samples, synth_meshes):
    sample, mesh = synth_samples[0], synth_meshes[0]
    vertices, faces = load_mesh(sample.mesh_path)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_allclose(mesh.camera_vertices(), vertices @ sample.object_to_camera[:3, :3].T
                               + sample.object_to_camera[:3, 3])  # fmt: skip
    assert mesh.camera_vertices()[:, 2].min() > 0.3  # in front of the camera, where the generator put it


def test_ground_truth_needs_a_shapenet_root(synth_obman):
    root, _ = synth_obman
    sample = ObManSplit(root, "test")[0]
    with pytest.raises(ValueError, match="shapenet_root"):
        GroundTruthMesh().reconstruct(None, sample)


def test_a_plugged_in_model_runs_end_to_end(synth_obman, tmp_path):
    root, summary = synth_obman
    split = ObManSplit(root, "test", shapenet_root=summary.shapenet_root, ids=range(4))
    model = ShrunkGroundTruth()
    report = render_split_views(split, model, tmp_path, num_orbit_views=1, batch_size=3, progress=False)
    assert report.rendered == [f"{i:08d}" for i in range(4)] and report.views_per_sample == 2
    assert model.calls[0] == ((256, 256), "RGB", "00000000")
    for sample in split:
        view = np.asarray(Image.open(tmp_path / view_name(sample.sample_id))).max(-1) > 0
        # Shrunk to 80%: inside the true mask, about 0.64 of its area.
        assert (view & ~sample.amodal_object_mask).sum() <= 2
        assert 0.5 < view.sum() / sample.amodal_object_mask.sum() < 0.75
        assert (tmp_path / orbit_view_name(sample.sample_id, 1)).is_file()


def test_mesh_folder_in_either_frame_and_missing_ids_by_id(synth_samples, synth_meshes, synth_obman, tmp_path):
    root, _ = synth_obman
    camera_dir, model_dir = tmp_path / "camera", tmp_path / "model"
    camera_dir.mkdir()
    model_dir.mkdir()
    for sample, mesh in zip(synth_samples[:3], synth_meshes[:3], strict=True):
        trimesh.Trimesh(mesh.camera_vertices(), mesh.faces, process=False).export(
            camera_dir / f"{sample.sample_id}.ply"
        )
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(model_dir / f"{sample.sample_id}.obj")
    split = ObManSplit(root, "test", ids=range(4))
    for folder, frame in ((camera_dir, "camera"), (model_dir, "model")):
        out = tmp_path / f"views_{frame}"
        report = render_split_views(split, MeshFolder(folder, frame), out, progress=False)
        assert report.rendered == ["00000000", "00000001", "00000002"]
        assert list(report.missing) == ["00000003"] and "no mesh for sample 00000003" in report.missing["00000003"]
        for sample in synth_samples[:3]:
            view = np.asarray(Image.open(out / view_name(sample.sample_id))).max(-1) > 0
            assert _iou(view, sample.amodal_object_mask) >= 0.99


def test_bad_meshes_are_named(tmp_path):
    (tmp_path / "00000001.ply").write_text("not a mesh")
    with pytest.raises(ValueError, match="00000001.ply"):
        load_mesh(tmp_path / "00000001.ply")
    with pytest.raises(FileNotFoundError, match="mesh file not found"):
        load_mesh(tmp_path / "absent.obj")
    with pytest.raises(ValueError, match=r"faces must have shape \[F, 3\]"):
        ObjectMesh(np.zeros((4, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="outside 0..3"):
        ObjectMesh(np.zeros((4, 3)), [[0, 1, 4]])
    with pytest.raises(ValueError, match="'camera' or 'model'"):
        MeshFolder(tmp_path, frame="world")


def test_cli_render(synth_obman, tmp_path, capsys):
    root, _ = synth_obman
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(
        "00000002\t0\t0\t/x/obman/test/rgb/00000002.jpg\n00000005\t0\t0\t/x/obman/test/rgb/00000005.jpg\n"
    )
    out = tmp_path / "views"
    main(["views", "render", "--obman_root", str(root), "--out", str(out), "--ids_from", str(ids_file),
          "--num_orbit_views", "2", "--orbit_elevation", "15"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"num_rendered": 2, "views_per_sample": 3, "missing": {}, "skipped": {}}
    names = sorted(path.name for path in out.glob("*.png"))
    assert names == sorted(
        [view_name(i) for i in ("00000002", "00000005")]
        + [orbit_view_name(i, k) for i in ("00000002", "00000005") for k in (1, 2)]
    )


def test_render_views_takes_object_meshes_directly():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.05)
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.0, 0.6]
    rendered = render_views([ObjectMesh(sphere.vertices, sphere.faces, pose)])
    # A 5 cm sphere at 0.6 m: radius 480 * 0.05 / 0.6 = 40 px around the image centre.
    assert rendered.masks[0, 0].sum() == pytest.approx(np.pi * 40**2, rel=0.05)
    assert rendered.masks[0, 0, 128, 128] and not rendered.masks[0, 0, 128, 172]


def test_cli_render_reports_every_sample_missing_when_no_mesh_loads(synth_obman, tmp_path, capsys):
    # No view at all (a corrupt mesh, a point cloud, absent files): the report still lands, naming each reason.
    root, _ = synth_obman
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "00000000.ply").write_text("garbage")
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(8, 3))).export(meshes / "00000001.ply")
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00000000\n00000001\n00000002\n")
    out = tmp_path / "views"
    main(["views", "render", "--obman_root", str(root), "--out", str(out), "--meshes", str(meshes),
          "--ids_from", str(ids_file)])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_rendered"] == 0 and list(printed["missing"]) == ["00000000", "00000001", "00000002"]
    assert "00000000.ply: not a readable mesh" in printed["missing"]["00000000"]
    assert "holds no triangles" in printed["missing"]["00000001"]
    assert "no mesh for sample 00000002" in printed["missing"]["00000002"]
    assert json.loads((out / "render_report.json").read_text()) == printed and not list(out.glob("*.png"))


def test_cli_render_refuses_to_replace_views_without_overwrite(synth_obman, tmp_path, capsys):
    root, _ = synth_obman
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00000002\n")
    out = tmp_path / "views"
    out.mkdir()
    (out / view_name("00000002", "train")).write_bytes(b"another split's view")  # other splits' views are fine
    argv = ["views", "render", "--obman_root", str(root), "--out", str(out), "--ids_from", str(ids_file)]
    main(argv)
    first = (out / view_name("00000002")).read_bytes()
    (out / view_name("00000002")).write_bytes(b"edited")
    with pytest.raises(FileExistsError, match=r"views: 1 of the 1 views to render are already there .*--overwrite"):
        main(argv)
    assert (out / view_name("00000002")).read_bytes() == b"edited"
    main([*argv, "--overwrite"])
    assert (out / view_name("00000002")).read_bytes() == first
