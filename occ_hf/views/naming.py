"""Where the 3D view of a sample lives: the seed's file names, local folders and URL templates.

The seed (chaoyiwang09/OCC-MLLM) renders its views with MOHO's `recontruct_3Dimage.py` (`test_image`): for each row
`scene, ref_idx, views, img_path` of `obman_view_test_all.txt` it writes
`'{}_{}_{}_{}_{}_{}.png'.format(scene, ref_idx, *img_path.split('/')[-4:])`, and its `inferenceImageAcc.py` reads
them back as `{id}_0_obman_test_rgb_{id}.jpg.png`. Those test views were published under `SEED_VIEWS_URL`.
`view_name` writes the same names for any split (`{id}_0_obman_{split}_rgb_{id}.jpg.png`); orbit views rendered by
occ-hf append `.orbit{k}` before `.png`, so they sort next to their sample's main view.

```python
view_name("00000003")                                        # '00000003_0_obman_test_rgb_00000003.jpg.png'
resolve_views(["00000003"], SEED_VIEWS_URL)                  # {'00000003': 'https://.../00000003_0_..._rgb_00000003.jpg.png'}
resolve_views(ids, "views/test")                             # local paths, same names
resolve_views(ids, "https://host/views/{split}/{id}.png")    # any template with {id}, {split} or {name}
found, missing = find_views(ids, "views/test")               # missing: ids without a file
paths, missing = download_views(dl_manager, ids, SEED_VIEWS_URL)   # through datasets' download manager
```
"""

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..obman.ids import obman_sample_id
from .verify import ViewImageError, verify_view_image


__all__ = [
    "SEED_VIEWS_URL",
    "VIEW_NAME_TEMPLATE",
    "download_views",
    "fill_template",
    "find_views",
    "orbit_view_name",
    "resolve_views",
    "view_name",
    "view_name_from_list_row",
]

VIEW_NAME_TEMPLATE = "{id}_0_obman_{split}_rgb_{id}.jpg.png"
SEED_VIEWS_URL = "https://obmandataset.s3.us-east-2.amazonaws.com/3d_views_fine_test_all/"
_TEMPLATE_FIELDS = ("{id}", "{split}", "{name}")


def fill_template(template: str, what: str, **values: str) -> str:
    """`template.format(**values)`, with a field outside `values` (or a stray brace) named in one `ValueError`.

    Args:
        template (`str`): A view name or a path/URL template such as `"https://host/{split}/{name}"`.
        what (`str`): The option it came from (`--source`, `view_name`, ...), named in the error.
        values (`str`): The fields the template may use.
    """
    allowed = ", ".join(f"{{{key}}}" for key in values)
    try:
        return template.format(**values)
    except KeyError as error:
        raise ValueError(
            f"{what} {template!r}: unknown field {{{error.args[0]}}}; the fields are {allowed}."
        ) from None
    except (IndexError, ValueError) as error:
        raise ValueError(
            f"{what} {template!r}: not a valid template ({error}); use the fields {allowed} and double any other "
            "brace ({{ or }})."
        ) from None


def view_name(sample_id: str | int, split: str = "test", template: str = VIEW_NAME_TEMPLATE) -> str:
    """File name of a sample's view, the seed's `{id}_0_obman_{split}_rgb_{id}.jpg.png` by default.

    Args:
        sample_id (`str` or `int`): ObMan sample id; normalised to 8 digits.
        split (`str`, *optional*, defaults to `"test"`): ObMan split of the sample.
        template (`str`, *optional*, defaults to `VIEW_NAME_TEMPLATE`): A name with `{id}` and optionally `{split}`.
    """
    return fill_template(template, "view name template", id=obman_sample_id(sample_id), split=split)


def orbit_view_name(sample_id: str | int, index: int, split: str = "test") -> str:
    """File name of orbit view `index` (1-based) of a sample: the main view's name with `.orbit{index}` inserted."""
    if index < 1:
        raise ValueError(f"Orbit views are numbered from 1 (0 is the input camera's view), got {index}.")
    return view_name(sample_id, split).removesuffix(".png") + f".orbit{index}.png"


def view_name_from_list_row(row: str) -> str:
    """The name MOHO's `test_image` gives the view of one row of a view list (`obman_view_test_all.txt`).

    A row is `scene<TAB>ref_idx<TAB>views<TAB>img_path`; the name is the scene, the reference index and the last
    four parts of the image path (`obman/test/rgb/00000003.jpg`) joined by `_`, plus `.png`.
    """
    fields = row.rstrip("\n").split("\t")
    if len(fields) != 4 or len(fields[3].split("/")) < 4:
        raise ValueError(
            f"View list row {row!r} is not 'scene<TAB>ref_idx<TAB>views<TAB>.../obman/<split>/rgb/<id>.jpg' "
            "(the format of the seed's obman_view_test_all.txt)."
        )
    scene, ref_idx, _, image_path = fields
    return "_".join([scene, ref_idx, *image_path.split("/")[-4:]]) + ".png"


def _is_url(source: str) -> bool:
    return "://" in source


def resolve_views(
    ids: Iterable[str | int], source: str | os.PathLike, split: str = "test", template: str = VIEW_NAME_TEMPLATE
) -> dict[str, str]:
    """Maps sample ids to where their views are: local paths or URLs, in the order given.

    This is the function the dataset builder hands to `datasets`' download manager (`dl_manager.download(...)`
    accepts the returned dict), so views are cached like any download; see [`download_views`] for a per-id version
    that reports missing views instead of failing.

    Args:
        ids (`Iterable[str | int]`): ObMan sample ids.
        source (`str` or `os.PathLike`):
            A local folder, a URL prefix (`SEED_VIEWS_URL`), or a full path/URL template holding `{id}`, `{split}`
            or `{name}` (the file name from `template`).
        split (`str`, *optional*, defaults to `"test"`): ObMan split of the ids.
        template (`str`, *optional*, defaults to `VIEW_NAME_TEMPLATE`): File name of a view.

    Returns:
        `dict[str, str]`: 8-digit id -> path or URL.
    """
    source = os.fspath(source)
    resolved = {}
    for sample_id in ids:
        sample_id = obman_sample_id(sample_id)
        name = view_name(sample_id, split, template)
        if any(field in source for field in _TEMPLATE_FIELDS):
            resolved[sample_id] = fill_template(source, "views source", id=sample_id, split=split, name=name)
        elif _is_url(source):
            resolved[sample_id] = source.rstrip("/") + "/" + name
        else:
            resolved[sample_id] = str(Path(source) / name)
    return resolved


def find_views(
    ids: Iterable[str | int], folder: str | os.PathLike, split: str = "test", template: str = VIEW_NAME_TEMPLATE
) -> tuple[dict[str, Path], list[str]]:
    """Looks the views of `ids` up in a local folder.

    Returns:
        `(found, missing)`: id -> path for every view file that exists, and the ids without one (in order).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: views folder not found (run `occ-hf views fetch` or `views render`).")
    found, missing = {}, []
    for sample_id, path in resolve_views(ids, folder, split, template).items():
        if Path(path).is_file():
            found[sample_id] = Path(path)
        else:
            missing.append(sample_id)
    return found, missing


def download_views(
    dl_manager,
    ids: Sequence[str | int],
    source: str | os.PathLike = SEED_VIEWS_URL,
    split: str = "test",
    template: str = VIEW_NAME_TEMPLATE,
    num_workers: int | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> tuple[dict[str, str], dict[str, str]]:
    """Downloads (or finds) views through a `datasets.DownloadManager`, so they land in its cache.

    `dl_manager.download` of a whole dict fails on the first missing file; a missing view is an expected event here
    (the Decision metric counts it as wrong), so each id is fetched on its own and failures are collected. Views are
    small and many (6,227 in the seed's test split), so the time goes into round trips: they are fetched by
    `num_workers` threads, as `datasets` itself fetches many small files, under one progress bar.

    Only a view the server does not have (404, or another 4xx) is missing. A server error (5xx), a timeout or a
    failed connection is retried `retries` times with doubling waits; if it persists, the remaining views are not
    tried and an `OSError` names the view and the failure, so the build stops instead of recording (and caching)
    views as missing that the server never answered for, and a rerun tries again.

    A streaming download manager (`load_dataset(..., streaming=True)`) downloads nothing: every id keeps its URL,
    and the reader checks each view when its row is read ([`read_view_image`]), with the same reasons for a missing
    one.

    Args:
        dl_manager (`datasets.DownloadManager` or `datasets.StreamingDownloadManager`): The builder's download manager.
        ids (`Sequence[str | int]`), source, split, template: As in [`resolve_views`].
        num_workers (`int`, *optional*): Parallel downloads; defaults to `datasets`' own
            `HF_DATASETS_MULTITHREADING_MAX_WORKERS` (16 unless set in the environment).
        timeout (`float`, *optional*, defaults to 10.0): Seconds to connect, and seconds without data, per attempt
            (aiohttp's own default is 5 minutes per request).
        retries (`int`, *optional*, defaults to 3): Further attempts after a server error, timeout or failed
            connection.
        backoff (`float`, *optional*, defaults to 1.0): First wait between attempts in seconds, doubled each time.

    Returns:
        `(locations, missing)`: id -> local cached path of each readable view (the URL itself when streaming), and
        id -> reason for each view that is not there (`not found: <url>`) or not a readable image; both in the
        order of `ids`.

    Raises:
        `OSError`: A view failed with `server error: ...`, `timed out: ...` or `connection failed: ...` on every
            attempt.
    """
    locations = resolve_views(ids, source, split, template)
    if getattr(dl_manager, "is_streaming", False):
        return locations, {}
    from datasets import config as datasets_config
    from datasets.utils.file_utils import cached_path
    from tqdm.auto import tqdm

    # Each thread calls what `dl_manager.download` calls for one file (`cached_path`, same cache and options), not
    # `download` itself: that patches os.environ on entry and exit, which is not safe from several threads.
    download_config = dl_manager.download_config.copy()
    download_config.extract_compressed_file = False
    download_config.disable_tqdm = True  # one bar for the views, not one per file
    download_config.storage_options = _with_http_timeout(download_config.storage_options, timeout)
    failures: list[str] = []  # the first view the server failed on every attempt; the others are then not tried

    def fetch(item: tuple[str, str]) -> tuple[str, str | None, str]:
        sample_id, location = item
        for attempt in range(retries + 1):
            if failures:
                return sample_id, None, "not tried"
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                path = cached_path(location, download_config=download_config)
                break
            except Exception as error:
                failure = _transfer_failure(error)
                if failure is None and isinstance(error, FileNotFoundError):
                    return sample_id, None, f"not found: {location}"
                if failure is None:
                    raise
        else:
            failures.append(
                f"{failure}: {location} (view of {sample_id}, {retries + 1} attempt{'s' * bool(retries)}); the views "
                "server did not "
                "serve it, so the remaining views were not tried: rerun when it answers again."
            )
            return sample_id, None, "not tried"
        try:
            verify_view_image(path)
        except ViewImageError as error:
            return sample_id, None, str(error)
        return sample_id, path, ""

    workers = max(1, num_workers or datasets_config.HF_DATASETS_MULTITHREADING_MAX_WORKERS)
    with ThreadPoolExecutor(workers) as pool:
        fetched = pool.map(fetch, locations.items())
        results = list(tqdm(fetched, total=len(locations), desc="3D views", unit="view"))
    if failures:
        raise OSError(failures[0])
    paths = {sample_id: path for sample_id, path, _ in results if path is not None}
    missing = {sample_id: reason for sample_id, path, reason in results if path is None}
    return paths, missing


def _with_http_timeout(storage_options: dict, timeout: float) -> dict:
    """`storage_options` of a download config with connect and read timeouts for fsspec's HTTP file system."""
    import aiohttp
    import fsspec

    generic = {key: value for key, value in storage_options.items() if key not in fsspec.available_protocols()}
    options = dict(storage_options)
    for protocol in ("http", "https"):
        protocol_options = {**generic, **storage_options.get(protocol, {})}
        client_kwargs = protocol_options.get("client_kwargs", {})
        # No total limit (a view is small, but a slow link is not an error); a silent server is.
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        protocol_options["client_kwargs"] = {"timeout": client_timeout, **client_kwargs}
        options[protocol] = protocol_options
    return options


def _transfer_failure(error: BaseException) -> str | None:
    """`server error: ...`, `timed out: ...` or `connection failed: ...` when `error` (or what it wraps: fsspec
    turns every failure of a HEAD into a FileNotFoundError) is one a later attempt may not have; else `None`."""
    import aiohttp

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, aiohttp.ClientResponseError):
            return f"server error: HTTP {error.status} {error.message}" if error.status >= 500 else None
        if isinstance(error, TimeoutError):  # asyncio's and aiohttp's timeouts are TimeoutError
            return f"timed out: {type(error).__name__}"
        if isinstance(error, aiohttp.ClientConnectionError | ConnectionError):
            return f"connection failed: {type(error).__name__}: {error}"
        error = error.__cause__ or error.__context__
    return None
