"""The dataset builder fetches views from a URL through datasets' download manager (cached, missing ones by id)."""

import logging

from datasets import load_dataset

import occ_hf  # noqa: F401
from occ_hf.obman import generate_obman_split
from occ_hf.views import view_name


def test_test_and_decision_configs_fetch_views_from_a_url(view_server, tmp_path, caplog):
    root = tmp_path / "obman"
    generate_obman_split(root, n=5, seed=3, split="test", progress=False)
    for sample_id in ("00000000", "00000001", "00000003", "00000004"):  # 00000002 is missing on the server
        view_server.files[view_name(sample_id, "test")] = (root / "test" / "rgb_obj" / f"{sample_id}.jpg").read_bytes()
    view_server.files[view_name("00000004", "test")] = b"not an image"  # corrupt on the server

    with caplog.at_level(logging.WARNING):
        test = load_dataset(
            "occ-obman-cot",
            "test",
            data_dir=str(root),
            views_url=view_server.url,
            split="test",
            cache_dir=str(tmp_path / "cache"),
        )
    assert [row["view"] is not None for row in test] == [True, True, False, True, False]
    assert "missing view (kept, view=None)': 2" in caplog.text

    def requests_for_view_0():
        return [path for path, _ in view_server.requests if path == "/" + view_name("00000000", "test")]

    before = len(requests_for_view_0())
    decision = load_dataset(
        "occ-obman-cot",
        "decision",
        data_dir=str(root),
        views_url=view_server.url,
        split="test",
        on_missing_view="skip",
        cache_dir=str(tmp_path / "cache"),
    )
    assert decision["id"] == ["00000000", "00000001", "00000003"]
    # Cached by the download manager like any download: the second build asked nothing more for a stored view.
    assert before > 0 and len(requests_for_view_0()) == before
