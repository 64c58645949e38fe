import pytest

from occ_hf.obman import read_id_list
from occ_hf.views import (
    SEED_VIEWS_URL,
    VIEW_NAME_TEMPLATE,
    find_views,
    orbit_view_name,
    resolve_views,
    view_name,
    view_name_from_list_row,
)

from ..testing_utils import seed_file


def test_names_and_urls_exactly_as_the_seed_for_its_test_ids():
    rows = seed_file("obman_view_test_all.txt").read_text().splitlines()
    ids, _ = read_id_list(seed_file("obman_view_test_all.txt"))
    assert len(rows) == len(ids) == 6227
    urls = resolve_views(ids, SEED_VIEWS_URL)
    for row, sample_id in zip(rows, ids, strict=True):
        # MOHO's writer (recontruct_3Dimage.py test_image), the seed's reader (inferenceImageAcc.py), and ours.
        seed_name = f"{sample_id}_0_obman_test_rgb_{sample_id}.jpg.png"
        assert view_name_from_list_row(row) == seed_name
        assert view_name(sample_id) == seed_name
        assert urls[sample_id] == (
            f"https://obmandataset.s3.us-east-2.amazonaws.com/3d_views_fine_test_all/{seed_name}"
        )
    assert list(urls) == ids


def test_resolve_local_folder_and_templates(tmp_path):
    assert resolve_views([3], tmp_path) == {"00000003": str(tmp_path / "00000003_0_obman_test_rgb_00000003.jpg.png")}
    assert resolve_views(["7"], "https://host/v/{split}/{id}.png", split="val") == {
        "00000007": "https://host/v/val/00000007.png"
    }
    assert resolve_views([7], "https://host/v/{name}", split="train") == {
        "00000007": "https://host/v/00000007_0_obman_train_rgb_00000007.jpg.png"
    }
    assert resolve_views([7], "https://host/v") == resolve_views([7], "https://host/v/")


def test_find_views_reports_missing_ids_in_order(tmp_path):
    for sample_id in ("00000001", "00000004"):
        (tmp_path / view_name(sample_id)).write_bytes(b"x")
    found, missing = find_views(["1", "2", "4", "9"], tmp_path)
    assert found == {"00000001": tmp_path / view_name(1), "00000004": tmp_path / view_name(4)}
    assert missing == ["00000002", "00000009"]
    with pytest.raises(FileNotFoundError, match="views folder not found"):
        find_views([1], tmp_path / "absent")


def test_orbit_names_sort_beside_the_main_view():
    assert orbit_view_name("12", 2, "val") == "00000012_0_obman_val_rgb_00000012.jpg.orbit2.png"
    with pytest.raises(ValueError, match="numbered from 1"):
        orbit_view_name(12, 0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="'abc' is not an ObMan sample id"):
        view_name("abc")
    with pytest.raises(ValueError, match="obman_view_test_all.txt"):
        view_name_from_list_row("00000001 0 0 rgb/00000001.jpg")


@pytest.mark.parametrize(
    ("source", "template", "match"),
    [
        ("https://host/{spilt}/{name}", VIEW_NAME_TEMPLATE, r"views source .*unknown field \{spilt\}; the fields are"),
        ("https://host/{name}/{}", VIEW_NAME_TEMPLATE, r"views source .*not a valid template"),
        ("views", "{id}_{view}.png", r"view name template .*unknown field \{view\}; the fields are \{id\}, \{split\}"),
    ],
)
def test_an_unknown_template_field_is_named(source, template, match):
    with pytest.raises(ValueError, match=match):
        resolve_views(["3"], source, template=template)
