"""`occ-hf views fetch`: download precomputed views with resume, retries, a progress bar and image checks.

Each view goes to `<name>.part` first; an interrupted download (a dropped connection, a killed run) is resumed with
an HTTP `Range: bytes=<size>-` request, appended when the server answers `206 Partial Content` and restarted when it
answers `200`. A finished file must decode as an image before it is renamed into place; one that does not is
deleted and fetched again (up to `retries`). A view already in the folder is kept if it decodes, re-fetched if not.
A `404` is not retried: the id is reported as missing (the Decision metric counts a missing view as wrong). A server
error (5xx), a timeout (`timeout` seconds to connect, or without data) or a failed connection is retried `retries`
times with doubling waits, then reported in `failed` as `server error: ...` / `timed out: ...` / `connection
failed: ...`, never as missing, so a rerun tries again. When a view has used all its attempts on timeouts or
connection failures, the server is taken to be unreachable: the views not yet started are failed at once
(`not tried: ...`) instead of each waiting out its own timeouts.

One fetch at a time writes into a folder: it holds `<out>/.views-fetch.lock` (released when the process ends, however
it ends), and a second fetch into the same folder is refused ("another fetch is writing into ...").

```bash
occ-hf views fetch --ids_from ../shared/seed/obman_view_test_all.txt --out views/test   # the seed's 6,227 views
occ-hf views fetch --ids_from val_ids.txt --split val --source "https://host/views/{split}/{name}" --out views/val
```
```python
report = fetch_views(ids, "views/test")      # FetchReport: fetched, present, missing (id -> url), failed (id -> why)
```

Downloads use the standard library (`urllib`), a thread per connection (`num_workers`); inside the dataset builder
the same files go through `datasets`' download manager instead (`occ_hf.views.naming.download_views`).
"""

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .naming import SEED_VIEWS_URL, VIEW_NAME_TEMPLATE, resolve_views, view_name
from .verify import ViewImageError, verify_view_image


__all__ = ["FetchReport", "FetchViewsConfig", "fetch_views"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 16
LOCK_NAME = ".views-fetch.lock"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(kw_only=True)
class FetchViewsConfig:
    r"""
    Configuration of `occ-hf views fetch`, which downloads views with [`fetch_views`].

    Parameters:
        split (`str`, *optional*, defaults to `"test"`):
            ObMan split of the ids (it is part of the file name).
        ids_from (`str`):
            The ids to fetch: a view list (the seed's `obman_view_test_all.txt`), a seed jsonl or a json id list.
        out (`str`):
            Folder the views are written to, under the seed's names.
        source (`str`, *optional*, defaults to `SEED_VIEWS_URL`):
            URL prefix, or URL template with `{id}`, `{split}` or `{name}`.
        retries (`int`, *optional*, defaults to `3`):
            Further attempts after a failed one (timeouts, connection errors, server errors, unreadable files).
        timeout (`float`, *optional*, defaults to `10.0`):
            Seconds to connect, and seconds without data, before an attempt fails (a view is some 50 KB).
        num_workers (`int`, *optional*, defaults to `8`):
            Parallel downloads.
    """

    split: str = field(default="test", metadata={"help": "ObMan split of the ids."})
    ids_from: str = field(metadata={"help": "Id list (seed's obman_view_test_all.txt), seed jsonl or json id list."})
    out: str = field(metadata={"help": "Folder the views are written to."})
    source: str = field(default=SEED_VIEWS_URL, metadata={"help": "URL prefix or template ({id}, {split}, {name})."})
    retries: int = field(default=3, metadata={"help": "Further attempts after a failed one."})
    timeout: float = field(
        default=10.0, metadata={"help": "Seconds to connect, and seconds without data, before an attempt fails."}
    )
    num_workers: int = field(default=8, metadata={"help": "Parallel downloads."})


@dataclass
class FetchReport:
    """What [`fetch_views`] did, by id.

    Attributes:
        fetched (`list[str]`): Ids downloaded in this run.
        present (`list[str]`): Ids whose view was already in the folder and readable.
        missing (`dict[str, str]`): Ids the server does not have (404), with the URL asked for.
        failed (`dict[str, str]`): Ids that still failed after all retries (or were not tried because the server
            was unreachable), with the last error: `server error: ...`, `timed out: ...`, `connection failed: ...`.
    """

    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        counts = {key: len(value) for key, value in asdict(self).items()}
        return {"counts": counts, "missing": self.missing, "failed": self.failed}


class _NotFound(Exception):
    pass


class _RetryableError(Exception):
    """An attempt failed in a way a later attempt may not (a damaged transfer, an unreadable file, a 4xx but 404)."""


class _ServerError(_RetryableError):
    """The server answered 5xx."""


class _Unreachable(_RetryableError):
    """No answer in time, or no connection: the server, not the view, is the problem."""


def fetch_views(
    ids: Sequence[str | int],
    out: str | os.PathLike,
    source: str = SEED_VIEWS_URL,
    split: str = "test",
    template: str = VIEW_NAME_TEMPLATE,
    retries: int = 3,
    timeout: float = 10.0,
    backoff: float = 1.0,
    num_workers: int = 8,
    progress: bool = True,
) -> FetchReport:
    """Downloads the views of `ids` into `out`, resuming partial files and verifying each one.

    Args:
        ids (`Sequence[str | int]`): ObMan sample ids.
        out (`str` or `os.PathLike`): Destination folder (created).
        source (`str`, *optional*, defaults to `SEED_VIEWS_URL`): URL prefix or template, as in [`resolve_views`].
        split (`str`, *optional*, defaults to `"test"`): ObMan split of the ids.
        template (`str`, *optional*, defaults to `VIEW_NAME_TEMPLATE`): File name of a view.
        retries (`int`, *optional*, defaults to 3): Further attempts after a failed one (a 404 is not retried).
        timeout (`float`, *optional*, defaults to 10.0): Seconds to connect, and seconds without data, per attempt.
        backoff (`float`, *optional*, defaults to 1.0): First wait between attempts in seconds, doubled each time.
        num_workers (`int`, *optional*, defaults to 8): Parallel downloads.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.

    Returns:
        [`FetchReport`]; ids in `missing` and `failed` are also logged.

    Raises:
        `OSError`: Another fetch is writing into `out`.
    """
    if not source.startswith(("http://", "https://")):
        raise ValueError(
            f"fetch_views downloads over HTTP(S), got source {source!r}; views already on disk need no fetching "
            "(look them up with find_views or resolve_views)."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    urls = resolve_views(ids, source, split, template)
    # flock-based: released by the OS when the process ends, so a killed fetch leaves no stale lock behind.
    lock = FileLock(out / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OSError(
            f"another fetch is writing into {out} (it holds {out / LOCK_NAME}); wait for it to finish, or fetch into "
            "another folder."
        ) from None
    try:
        return _fetch_locked(urls, out, source, split, template, retries, timeout, backoff, num_workers, progress)
    finally:
        lock.release()


def _fetch_locked(urls, out, source, split, template, retries, timeout, backoff, num_workers, progress) -> FetchReport:
    report = FetchReport()
    unreachable: list[str] = []  # the first view that used all its attempts on timeouts or connection failures

    def fetch_one(sample_id: str, url: str) -> tuple[str, str, str | None]:
        if unreachable:
            return sample_id, "failed", f"not tried: {unreachable[0]}"
        destination = out / view_name(sample_id, split, template)
        if destination.exists():
            try:
                verify_view_image(destination)
                return sample_id, "present", None
            except ViewImageError as error:
                logger.warning("Re-fetching %s: %s", sample_id, error)
                destination.unlink()
        try:
            _download_verified(url, destination, retries, timeout, backoff)
        except _NotFound:
            return sample_id, "missing", url
        except _Unreachable as error:
            unreachable.append(f"{error} (for {sample_id}), so the server was taken to be unreachable")
            return sample_id, "failed", str(error)
        except _RetryableError as error:
            return sample_id, "failed", str(error)
        return sample_id, "fetched", None

    with (
        ThreadPoolExecutor(max(1, num_workers)) as pool,
        tqdm(total=len(urls), desc=f"views fetch {split}", unit="view", disable=not progress) as bar,
    ):
        for sample_id, outcome, detail in pool.map(lambda item: fetch_one(*item), urls.items()):
            if outcome == "fetched":
                report.fetched.append(sample_id)
            elif outcome == "present":
                report.present.append(sample_id)
            elif outcome == "missing":
                report.missing[sample_id] = detail
            else:
                report.failed[sample_id] = detail
            bar.update(1)
            bar.set_postfix(missing=len(report.missing), failed=len(report.failed), refresh=False)
    if report.missing:
        logger.warning("%d views not found on %s: %s", len(report.missing), source, sorted(report.missing))
    if report.failed:
        logger.warning("%d views failed after %d retries: %s", len(report.failed), retries, report.failed)
    return report


def _download_verified(url: str, destination: Path, retries: int, timeout: float, backoff: float) -> None:
    """Downloads `url` to `destination` through `<destination>.part`, retrying and resuming; verifies the image."""
    partial = destination.with_name(destination.name + ".part")
    last_error = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _download_to(url, partial, timeout)
        except _RetryableError as error:
            last_error = error
            continue
        try:
            verify_view_image(partial)
        except ViewImageError as error:
            # A whole file that does not decode will not get better by resuming it: start over.
            partial.unlink()
            last_error = error
            continue
        os.replace(partial, destination)
        return
    attempts = f"{retries + 1} attempt{'s' * bool(retries)}"
    if isinstance(last_error, _ServerError):
        raise _ServerError(f"server error: {url}: {last_error} ({attempts})")
    if isinstance(last_error, _Unreachable):
        raise _Unreachable(f"{last_error}: {url} ({attempts})")
    raise _RetryableError(f"{url}: {last_error}")


def _download_to(url: str, partial: Path, timeout: float) -> None:
    """One attempt: appends the rest of `url` to `partial` (resuming from its size) or rewrites it."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status == 206:
                match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != offset:
                    raise _RetryableError(f"server answered Range bytes={offset}- with {match and match.group(0)}")
                mode = "ab"
            else:  # 200: the server ignored the Range header, so it sends the whole file
                offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            received = 0
            with open(partial, mode) as file:
                while chunk := response.read(_CHUNK_BYTES):
                    file.write(chunk)
                    received += len(chunk)
            if expected is not None and received < expected:
                raise _RetryableError(f"connection closed after {offset + received} bytes of {offset + expected}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise _NotFound(url) from None
        if error.code == 416:  # the partial file is already as long as (or longer than) the resource
            partial.unlink(missing_ok=True)
        kind = _ServerError if error.code >= 500 else _RetryableError
        raise kind(f"HTTP {error.code} {error.reason}") from None
    except (TimeoutError, urllib.error.URLError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError
            raise _Unreachable(f"timed out: no answer within {timeout:g} s") from None
        if isinstance(reason, OSError):  # refused, reset, no route, unknown host
            raise _Unreachable(f"connection failed: {type(reason).__name__}: {reason}") from None
        raise _RetryableError(f"{type(error).__name__}: {error}") from None
    except (http.client.HTTPException, OSError) as error:
        raise _RetryableError(f"{type(error).__name__}: {error}") from None


def fetch_views_main(config: FetchViewsConfig) -> FetchReport:
    """`occ-hf views fetch`: reads the ids, fetches, writes `fetch_report.json` beside the views and prints it."""
    from ..obman import read_id_list

    ids, _ = read_id_list(config.ids_from)
    report = fetch_views(
        ids,
        config.out,
        source=config.source,
        split=config.split,
        retries=config.retries,
        timeout=config.timeout,
        num_workers=config.num_workers,
    )
    summary = json.dumps(report.to_dict(), indent=2)
    (Path(config.out) / "fetch_report.json").write_text(summary + "\n")
    print(summary)
    return report
