"""The dataset builder fetches views from a URL through datasets' download manager (cached, missing ones by id)."""

import logging

import pytest
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


def test_streaming_reads_views_from_the_url_row_by_row(view_server, tmp_path, caplog):
    # Streaming downloads nothing up front: each view is read from the URL when its row is, and a 404 or a file that
    # is not an image is a missing view with its reason, as in the built dataset.
    root = tmp_path / "obman"
    generate_obman_split(root, n=4, seed=5, split="test", progress=False)
    for sample_id in ("00000000", "00000002"):
        view_server.files[view_name(sample_id, "test")] = (root / "test" / "rgb_obj" / f"{sample_id}.jpg").read_bytes()
    view_server.files[view_name("00000003", "test")] = b"<html>403</html>"
    kwargs = {"data_dir": str(root), "views_url": view_server.url, "split": "test", "cache_dir": str(tmp_path / "c")}

    view_server.requests.clear()
    stream = load_dataset("occ-obman-cot", "test", streaming=True, **kwargs)
    assert view_server.requests == []  # nothing read before the rows are
    with caplog.at_level(logging.WARNING):
        streamed = list(stream)
    built = load_dataset("occ-obman-cot", "test", **kwargs)
    assert [row["id"] for row in streamed] == built["id"] == ["00000000", "00000001", "00000002", "00000003"]
    assert [row["view"] is not None for row in streamed] == [True, False, True, False]
    for streamed_row, built_row in zip(streamed, built, strict=True):
        if built_row["view"] is not None:
            assert streamed_row["view"].tobytes() == built_row["view"].tobytes()
    assert "missing view (kept, view=None)': 2" in caplog.text

    decision = load_dataset("occ-obman-cot", "decision", streaming=True, **kwargs)
    with pytest.raises(
        FileNotFoundError, match=r"sample 00000001: not found: http://127\.0\.0\.1:\d+/00000001_0_obman"
    ):
        list(decision)
    skipped = load_dataset("occ-obman-cot", "decision", streaming=True, on_missing_view="skip", **kwargs)
    assert [row["id"] for row in skipped] == ["00000000", "00000002"]
