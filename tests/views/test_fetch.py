import json
from pathlib import Path

import pytest
from datasets import DownloadConfig, DownloadManager

from occ_hf.cli import main
from occ_hf.views import download_views, fetch_views, verify_view_image, view_name
from occ_hf.views.verify import ViewImageError

from ..testing_utils import decompression_bomb_png
from .conftest import png_bytes


IDS = ["00000000", "00000003", "00000004"]


def _serve(view_server, ids=IDS):
    for seed, sample_id in enumerate(ids):
        view_server.files[view_name(sample_id)] = png_bytes(seed)


def _fetch(view_server, out, ids=IDS, **kwargs):
    kwargs = {"retries": 2, "backoff": 0.0, "timeout": 5.0, "num_workers": 2, "progress": False, **kwargs}
    return fetch_views(ids, out, source=view_server.url, **kwargs)


def test_fetches_every_view_under_the_seed_names(view_server, tmp_path):
    _serve(view_server)
    report = _fetch(view_server, tmp_path)
    assert sorted(report.fetched) == IDS and not report.missing and not report.failed
    for sample_id in IDS:
        assert (tmp_path / view_name(sample_id)).read_bytes() == view_server.files[view_name(sample_id)]
    assert not list(tmp_path.glob("*.part"))
    # A second run finds them all and asks the server nothing.
    view_server.requests.clear()
    again = _fetch(view_server, tmp_path)
    assert sorted(again.present) == IDS and not again.fetched and view_server.requests == []


def test_interrupted_download_resumes_with_a_range_request(view_server, tmp_path):
    _serve(view_server)
    name = view_name("00000003")
    view_server.cut_once.add(name)
    report = _fetch(view_server, tmp_path)
    assert sorted(report.fetched) == IDS
    half = len(view_server.files[name]) // 2
    assert view_server.requests_for(name) == [None, f"bytes={half}-"]
    assert (tmp_path / name).read_bytes() == view_server.files[name]


def test_partial_file_of_an_earlier_run_is_resumed(view_server, tmp_path):
    _serve(view_server)
    name = view_name("00000004")
    body = view_server.files[name]
    (tmp_path / f"{name}.part").write_bytes(body[:100])
    _fetch(view_server, tmp_path, ids=["00000004"])
    assert view_server.requests_for(name) == ["bytes=100-"]
    assert (tmp_path / name).read_bytes() == body


def test_server_ignoring_range_gets_the_file_rewritten(view_server, tmp_path):
    _serve(view_server)
    view_server.ignore_range = True
    name = view_name("00000004")
    (tmp_path / f"{name}.part").write_bytes(b"stale bytes of another version")
    report = _fetch(view_server, tmp_path, ids=["00000004"])
    assert report.fetched == ["00000004"]
    assert (tmp_path / name).read_bytes() == view_server.files[name]


def test_corrupt_local_view_is_fetched_again(view_server, tmp_path):
    _serve(view_server)
    name = view_name("00000000")
    (tmp_path / name).write_bytes(view_server.files[name][:300])  # truncated PNG
    with pytest.raises(ViewImageError, match="not a readable image"):
        verify_view_image(tmp_path / name)
    report = _fetch(view_server, tmp_path, ids=["00000000"])
    assert report.fetched == ["00000000"]
    assert verify_view_image(tmp_path / name) == (64, 64)


def test_server_sending_a_non_image_fails_after_the_retries(view_server, tmp_path):
    name = view_name("00000003")
    view_server.files[name] = b"<html>Access Denied</html>"
    report = _fetch(view_server, tmp_path, ids=["00000003"], retries=2)
    assert list(report.failed) == ["00000003"] and "not a readable image" in report.failed["00000003"]
    assert len(view_server.requests_for(name)) == 3
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.part").exists()


def test_404_is_reported_by_id_and_not_retried(view_server, tmp_path):
    _serve(view_server, ids=["00000000", "00000004"])
    report = _fetch(view_server, tmp_path)
    assert report.missing == {"00000003": view_server.url + view_name("00000003")}
    assert sorted(report.fetched) == ["00000000", "00000004"]
    assert len(view_server.requests_for(view_name("00000003"))) == 1


def test_a_local_folder_is_not_a_fetch_source(tmp_path):
    with pytest.raises(ValueError, match="find_views"):
        fetch_views(IDS, tmp_path / "out", source=str(tmp_path))


def test_cli_fetch_writes_a_report(view_server, tmp_path, capsys):
    _serve(view_server, ids=["00000000"])
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(
        "00000000\t0\t0\t/x/obman/test/rgb/00000000.jpg\n00000003\t0\t0\t/x/obman/test/rgb/00000003.jpg\n"
    )
    out = tmp_path / "views"
    main(["views", "fetch", "--ids_from", str(ids_file), "--out", str(out), "--source", view_server.url])
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == {"fetched": 1, "present": 0, "missing": 1, "failed": 0}
    assert list(printed["missing"]) == ["00000003"]
    assert json.loads((out / "fetch_report.json").read_text()) == printed


def test_download_views_through_the_datasets_download_manager(view_server, tmp_path):
    _serve(view_server, ids=["00000000", "00000004"])
    view_server.files[view_name("00000005")] = b"not an image"
    manager = DownloadManager(download_config=DownloadConfig(cache_dir=tmp_path / "cache", disable_tqdm=True))
    paths, missing = download_views(manager, ["0", "3", "4", "5"], view_server.url)
    assert sorted(paths) == ["00000000", "00000004"]
    assert Path(paths["00000004"]).read_bytes() == view_server.files[view_name("00000004")]
    assert Path(paths["00000004"]).is_relative_to(tmp_path / "cache")  # in the manager's cache
    assert missing["00000003"] == f"not found: {view_server.url}{view_name('00000003')}"
    assert "not a readable image" in missing["00000005"]


@pytest.mark.parametrize("num_workers", [1, 8])
def test_download_views_in_parallel_gives_the_same_views_in_order(view_server, tmp_path, num_workers):
    ids = [f"{i:08d}" for i in range(24)]
    _serve(view_server, ids=[i for i in ids if int(i) % 5])  # every fifth one is missing
    view_server.files[view_name("00000007")] = b"<html>503</html>"
    manager = DownloadManager(download_config=DownloadConfig(cache_dir=tmp_path / "cache"))
    paths, missing = download_views(manager, ids, view_server.url, num_workers=num_workers)
    assert list(paths) == [i for i in ids if int(i) % 5 and i != "00000007"]
    assert list(missing) == [i for i in ids if not int(i) % 5 or i == "00000007"]
    for sample_id, path in paths.items():
        assert Path(path).read_bytes() == view_server.files[view_name(sample_id)]
    assert "not a readable image" in missing["00000007"] and missing["00000005"].startswith("not found: ")
    assert manager.download_config.disable_tqdm is False  # the manager's own options are left as they were


def test_server_error_is_retried_then_reported_as_such_and_not_as_missing(view_server, tmp_path, capsys):
    """A 500 was reported (and kept) as a missing view; it is a failure a rerun tries again."""
    _serve(view_server)
    name = view_name("00000003")
    view_server.statuses[name] = [500] * 3
    report = _fetch(view_server, tmp_path, retries=2)
    assert sorted(report.fetched) == ["00000000", "00000004"] and not report.missing
    assert report.failed["00000003"].startswith(f"server error: {view_server.url}{name}: HTTP 500")
    assert "(3 attempts)" in report.failed["00000003"] and len(view_server.requests_for(name)) == 3
    again = _fetch(view_server, tmp_path)  # the server is fine again: the rerun fetches it
    assert again.fetched == ["00000003"] and sorted(again.present) == ["00000000", "00000004"]


def test_transient_server_errors_are_retried(view_server, tmp_path):
    _serve(view_server, ids=["00000004"])
    name = view_name("00000004")
    view_server.statuses[name] = [503, 502]
    report = _fetch(view_server, tmp_path, ids=["00000004"], retries=2)
    assert report.fetched == ["00000004"] and len(view_server.requests_for(name)) == 3


def test_a_server_that_never_answers_times_out_and_the_other_views_are_not_tried(silent_server, tmp_path):
    """12 views from a server that never answered took ~5 minutes; after one view's attempts, the rest are skipped."""
    ids = [f"{i:08d}" for i in range(12)]
    report = fetch_views(ids, tmp_path, source=silent_server, retries=1, timeout=0.2, backoff=0.0, num_workers=2,
                         progress=False)  # fmt: skip
    assert not report.missing and not report.fetched and sorted(report.failed) == ids
    timed_out = [reason for reason in report.failed.values() if reason.startswith("timed out: no answer within 0.2 s")]
    assert 1 <= len(timed_out) <= 2  # the views the two workers had started
    not_tried = [reason for reason in report.failed.values() if reason.startswith("not tried: timed out")]
    assert len(timed_out) + len(not_tried) == 12 and "taken to be unreachable" in not_tried[0]


def test_a_refused_connection_is_a_connection_failure(refusing_server, tmp_path):
    report = fetch_views(["3"], tmp_path, source=refusing_server, retries=1, backoff=0.0, progress=False)
    assert report.failed["00000003"].startswith("connection failed: ConnectionRefusedError") and not report.missing


def test_a_second_fetch_into_the_same_folder_is_refused(view_server, tmp_path):
    """Two fetches into one folder: the second died on the first one's .part file."""
    from filelock import FileLock

    from occ_hf.views.fetch import LOCK_NAME

    _serve(view_server)
    with FileLock(tmp_path / LOCK_NAME), pytest.raises(OSError, match=f"another fetch is writing into {tmp_path}"):
        _fetch(view_server, tmp_path)
    assert view_server.requests == [] and not list(tmp_path.glob("*.png*"))
    assert sorted(_fetch(view_server, tmp_path).fetched) == IDS  # the lock is free again


def test_download_views_keeps_server_errors_apart_from_missing_views(view_server, tmp_path):
    """download_views (the dataset builder's path) reported a 500 as 'not found', so the build cached the view as
    missing; it now retries and then stops the build, naming the failure."""
    _serve(view_server, ids=["00000000", "00000004"])
    manager = DownloadManager(download_config=DownloadConfig(cache_dir=tmp_path / "cache", disable_tqdm=True))
    view_server.statuses[view_name("00000004")] = [500] * 100
    with pytest.raises(OSError, match=r"server error: HTTP 500 .*view of 00000004, 2 attempts.*rerun"):
        download_views(manager, ["0", "3", "4"], view_server.url, retries=1, backoff=0.0)
    view_server.statuses[view_name("00000004")] = [503]  # a passing fault: retried
    paths, missing = download_views(manager, ["0", "3", "4"], view_server.url, retries=1, backoff=0.0)
    assert sorted(paths) == ["00000000", "00000004"] and list(missing) == ["00000003"]


def test_download_views_from_a_server_that_never_answers_times_out(silent_server, tmp_path):
    manager = DownloadManager(download_config=DownloadConfig(cache_dir=tmp_path / "cache", disable_tqdm=True))
    with pytest.raises(OSError, match=r"timed out: .*\(view of 0000000\d, 1 attempt\)"):
        download_views(manager, [str(i) for i in range(12)], silent_server, timeout=0.2, retries=0, num_workers=2)


def test_a_decompression_bomb_is_a_failed_view_and_the_report_is_written(view_server, tmp_path, capsys):
    # PIL's DecompressionBombError is not an OSError: it escaped the fetcher, and the report was never written.
    _serve(view_server, ids=["00000000"])
    view_server.files[view_name("00000003")] = decompression_bomb_png()
    report = _fetch(view_server, tmp_path / "a", ids=["00000000", "00000003"], retries=0)
    assert report.fetched == ["00000000"] and "image too large to decode" in report.failed["00000003"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("00000000\n00000003\n")
    out = tmp_path / "views"
    out.mkdir()
    (out / view_name("00000000")).write_bytes(decompression_bomb_png())  # a local bomb is fetched again
    argv = ["views", "fetch", "--ids_from", str(ids_file), "--out", str(out), "--source", view_server.url]
    main([*argv, "--retries", "0"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == {"fetched": 1, "present": 0, "missing": 0, "failed": 1}
    assert json.loads((out / "fetch_report.json").read_text()) == printed
    assert verify_view_image(out / view_name("00000000")) == (64, 64)
