"""A local, Hub-compatible HTTP server for tests, and the `hub_server` pytest fixture that points every client at it.

`push_to_hub` and loading back by repo id (`load_dataset(repo_id)`, `AutoModel.from_pretrained(repo_id)`,
`hf_hub_download`, `snapshot_download`, `ModelCard.load`) are tested against this server on 127.0.0.1; no real Hub
can be reached from the project's machines. It speaks the routes that huggingface_hub 2.x (and through it
`datasets` and `transformers`) call to create repos, upload (regular and LFS files), commit and download:

```
GET  /api/whoami-v2                                   POST /api/repos/create (409 if it exists)
DELETE /api/repos/delete                              POST /api/validate-yaml
GET  /api/{type}s/{repo}[/revision/{rev}]             GET  /api/{type}s/{repo}/tree/{rev}[/{path}]
POST /api/{type}s/{repo}/paths-info/{rev}             GET  /api/{type}s/{repo}/refs
POST /api/{type}s/{repo}/branch/{branch}              POST /api/{type}s/{repo}/preupload/{rev}
POST /api/{type}s/{repo}/commit/{rev}   (NDJSON)      POST /{prefix}{repo}.git/info/lfs/objects/batch
PUT  /lfs-objects/{sha256}   (the "presigned" URL)    HEAD, GET /{prefix}{repo}/resolve/{rev}/{path}   (Range too)
```

Repos live in memory, by type and id, as a chain of commits (each a full `{path: file}` snapshot, with git-style
blob, tree and commit ids); LFS objects are stored once by sha256. Writes need `Authorization: Bearer <token>`.

```python
def test_push(hub_server):                  # HF_ENDPOINT, HF_TOKEN, caches etc. now point at the server
    HfApi().create_repo("occ-tester/tiny")
    model.push_to_hub("occ-tester/tiny")
    assert "model.safetensors" in hub_server.files("model", "occ-tester/tiny")   # {path: bytes} at "main"
    AutoModel.from_pretrained("occ-tester/tiny")
```

Not implemented (a client that needs one gets a 404 or 400 naming it): Xet storage (the fixture sets
`HF_HUB_DISABLE_XET=1`, so uploads use LFS), LFS multipart uploads and `verify`, pull requests (`create_pr`),
tags and `refs/convert/*`, short commit ids (revisions are branch names or full 40-hex ids), `super_squash`,
commit listing (`/commits`), file copies (`CommitOperationCopy`), repo settings and moves, private or gated repos
and any permission model beyond the one token (every repo is public and readable without a token), `.gitignore`
handling at preupload, pagination (listings come in one page), `expand=True` details (`lastCommit`, security
scans), the dataset viewer (`datasets-server`), Spaces runtimes, search and listing of repos, discussions, likes.
"""

import base64
import fnmatch
import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml


HUB_USER = "occ-tester"
HUB_TOKEN = "hf_occ_hf_local_test_token"
PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
MAX_REGULAR_FILE_SIZE = 10 * 1024 * 1024  # the Hub refuses larger files outside LFS
# A subset of the .gitattributes the Hub writes into every new repo: these suffixes always go through LFS.
LFS_PATTERNS = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.gz *.h5 *.joblib *.msgpack *.npy *.npz *.onnx *.parquet *.pb *.pickle *.pkl "
    "*.pt *.pth *.rar *.safetensors *.tar *.tflite *.tgz *.xz *.zip *.zst *.jpg *.jpeg *.png *.webp *.mp4 *tfevents*"
)
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS_PATTERNS.split()
).encode()


class HubError(Exception):
    """An error answered to the client: HTTP status, the Hub's `X-Error-Code` (if any) and a message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """A file of a commit; an LFS file (`sha256` set) has the git blob id of its pointer file, as on the Hub."""

    data: bytes
    sha256: str | None = None

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def blob_id(self) -> str:
        return _git_blob_id(self.pointer if self.sha256 else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id

    def entry(self, path: str) -> dict:
        entry = {"type": "file", "path": path, "oid": self.blob_id, "size": self.size}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(self.pointer)}
        return entry


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    files: dict[str, StoredFile]

    def folder_entry(self, folder: str) -> dict:
        children = sorted(f"{path} {f.blob_id}" for path, f in self.files.items() if path.startswith(folder + "/"))
        return {"type": "directory", "path": folder, "oid": hashlib.sha1("\n".join(children).encode()).hexdigest()}

    def list_folder(self, folder: str, recursive: bool) -> list[dict]:
        """Entries under `folder` ("" for the root): files and folders, one level deep unless `recursive`."""
        prefix = f"{folder}/" if folder else ""
        if folder and not any(path.startswith(prefix) for path in self.files):
            raise HubError(404, f"{folder} is not a folder of commit {self.oid}", "EntryNotFound")
        entries = {}
        for path in sorted(self.files):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                sub_folder = prefix + "/".join(parts[:depth])
                entries.setdefault(sub_folder, self.folder_entry(sub_folder))
            if recursive or len(parts) == 1:
                entries[path] = self.files[path].entry(path)
        return list(entries.values())

    def path_entry(self, path: str) -> dict | None:
        if path in self.files:
            return self.files[path].entry(path)
        if any(name.startswith(path.rstrip("/") + "/") for name in self.files):
            return self.folder_entry(path.rstrip("/"))
        return None


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    created_at: str = field(default_factory=_now)
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    @property
    def url_path(self) -> str:
        return PREFIXES[self.repo_type] + self.repo_id

    def resolve(self, revision: str) -> Commit:
        """The commit a branch name or a (full) commit id points to."""
        oid = self.branches.get(revision, revision)
        if oid not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision} (no such branch or commit)", "RevisionNotFound")
        return self.commits[oid]

    def add_commit(self, branch: str, title: str, files: dict[str, StoredFile]) -> Commit:
        parent = self.branches.get(branch, "")
        date, tree = _now(), (f"{path} {stored.blob_id}" for path, stored in sorted(files.items()))
        digest = "\n".join([self.url_path, parent, title, date, *tree])
        commit = Commit(oid=hashlib.sha1(digest.encode()).hexdigest(), title=title, date=date, files=files)
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


def _front_matter(readme: bytes) -> dict | None:
    """The YAML metadata block of a README.md, parsed; None when there is none."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme.decode("utf-8", errors="replace"), re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else None


_REPO = r"(?P<repo>[^/]+/[^/]+?)"
_API = r"^/api/(?P<type>model|dataset|space)s/" + _REPO
_PREFIX = r"^/(?:(?P<type>dataset|space)s/)?"
ROUTES = [
    ("GET", r"^/api/whoami-v2$", "whoami"),
    ("POST", r"^/api/repos/create$", "create_repo"),
    ("DELETE", r"^/api/repos/delete$", "delete_repo"),
    ("POST", r"^/api/validate-yaml$", "validate_yaml"),
    ("GET", _API + r"(?:/revision/(?P<rev>[^/]+))?$", "repo_info"),
    ("GET", _API + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$", "tree"),
    ("POST", _API + r"/paths-info/(?P<rev>[^/]+)$", "paths_info"),
    ("GET", _API + r"/refs$", "refs"),
    ("POST", _API + r"/branch/(?P<rev>[^/]+)$", "create_branch"),
    ("POST", _API + r"/preupload/(?P<rev>[^/]+)$", "preupload"),
    ("POST", _API + r"/commit/(?P<rev>[^/]+)$", "commit"),
    ("POST", _PREFIX + _REPO + r"\.git/info/lfs/objects/batch$", "lfs_batch"),
    ("PUT", r"^/lfs-objects/(?P<oid>[0-9a-f]{64})$", "lfs_upload"),
    ("GET", _PREFIX + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
    ("HEAD", _PREFIX + _REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
]


class HubRequestHandler(BaseHTTPRequestHandler):
    """Dispatches a request to the `ROUTES` method that matches it; `HubError`s become Hub-style error answers."""

    # HTTP/1.0: one connection per request. Keep-alive would leave pooled client connections to a stopped server's
    # handler threads, which a later server on a reused port could be mistaken for.
    protocol_version = "HTTP/1.0"
    server: "ThreadingHTTPServer"

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format, *args):
        pass  # requests are recorded in `HubServer.requests` instead of printed

    @property
    def hub(self) -> "HubServer":
        return self.server.hub

    def _dispatch(self):
        url = urlsplit(self.path)
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.body = self._read_body()  # read whatever happens next, so that the client always gets our answer
        try:
            for method, pattern, name in ROUTES:
                match = re.match(pattern, url.path)
                if method == self.command and match:
                    args = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                    getattr(self, name)(**args)
                    break
            else:
                raise HubError(404, f"{self.command} {url.path} is not implemented by the test Hub server")
        except HubError as error:
            self._send(error.status, {"error": error.message}, error.headers)
        except Exception as error:  # a bug here: answer it, so the client fails with the cause, not a reset
            self._send(500, {"error": f"test Hub server error: {error!r}"}, {"X-Error-Message": repr(error)})
            raise

    def _send(self, status: int, body: dict | list | bytes = b"", headers: dict | None = None) -> int:
        if not isinstance(body, bytes):
            body = json.dumps(body, default=str).encode()  # default: dates parsed from YAML metadata
            headers = {"Content-Type": "application/json", **(headers or {})}
        # Recorded before the answer goes out: a client may read the record as soon as it has its answer, before
        # this thread would get to run again.
        self.hub.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"The request body is not JSON: {error}") from error

    def _flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")

    def _require_token(self):
        if self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, type: str = "model", repo: str = "") -> Repo:
        found = self.hub.repos.get((type, repo))
        if found is None:
            raise HubError(404, f"Repository not found: {PREFIXES[type]}{repo}", "RepoNotFound")
        return found

    # Account and repos

    def whoami(self) -> int:
        self._require_token()
        token = {"displayName": "occ-hf tests", "role": "write"}
        user = {"type": "user", "id": "0" * 24, "name": self.hub.user, "fullname": "occ-hf tests", "orgs": []}
        return self._send(200, {**user, "auth": {"type": "access_token", "accessToken": token}})

    def create_repo(self) -> int:
        self._require_token()
        payload = self._json()
        repo_type, name = payload.get("type") or "model", payload.get("name", "")
        repo_id = f"{payload.get('organization') or self.hub.user}/{name}"
        if repo_type not in PREFIXES or not re.fullmatch(r"[\w][\w.-]{0,95}", name) or ".." in name or "--" in name:
            raise HubError(400, f"Invalid repo type or name: {repo_type} {repo_id!r}")
        url = f"{self.hub.endpoint}/{PREFIXES[repo_type]}{repo_id}"
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:  # huggingface_hub reads the url of a 409 (exist_ok=True)
                message = f"You already created this {repo_type} repo: {url}"
                return self._send(409, {"error": message, "url": url}, {"X-Error-Message": message})
            repo = self.hub.repos[repo_type, repo_id] = Repo(repo_type, repo_id)
            repo.add_commit("main", "initial commit", {".gitattributes": StoredFile(GITATTRIBUTES)})
        return self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self) -> int:
        self._require_token()
        payload = self._json()
        namespace = payload.get("organization") or self.hub.user
        repo = self._repo(payload.get("type") or "model", f"{namespace}/{payload.get('name')}")
        with self.hub.lock:
            del self.hub.repos[repo.repo_type, repo.repo_id]
        return self._send(200, {})

    def validate_yaml(self) -> int:
        try:
            metadata = _front_matter(self._json().get("content", "").encode())
        except yaml.YAMLError as error:
            return self._send(400, {"errors": [{"message": f"the YAML metadata does not parse: {error}"}]})
        if metadata is not None and not isinstance(metadata, dict):
            return self._send(400, {"errors": [{"message": "the YAML metadata must be a mapping"}]})
        return self._send(200, {"errors": [], "warnings": []})

    def repo_info(self, rev: str = "main", **repo_args) -> int:
        repo = self._repo(**repo_args)
        commit = repo.resolve(rev)
        siblings = [{"rfilename": path} for path in sorted(commit.files)]
        if self._flag("blobs"):
            for sibling in siblings:
                stored = commit.files[sibling["rfilename"]]
                sibling.update(size=stored.size, blobId=stored.blob_id)
                if stored.sha256:
                    sibling["lfs"] = {"size": stored.size, "sha256": stored.sha256, "pointerSize": len(stored.pointer)}
        readme = commit.files.get("README.md")
        info = {"_id": hashlib.sha1(repo.url_path.encode()).hexdigest()[:24], "id": repo.repo_id, "sha": commit.oid}
        info |= {"author": repo.repo_id.split("/")[0], "private": False, "disabled": False, "gated": False}
        info |= {"createdAt": repo.created_at, "lastModified": commit.date, "downloads": 0, "likes": 0, "tags": []}
        try:
            card_data = _front_matter(readme.data) if readme else None
        except yaml.YAMLError:
            card_data = None  # the Hub, too, serves a repo whose card does not parse, without its metadata
        info |= {"siblings": siblings, "cardData": card_data}
        return self._send(200, info | ({"modelId": repo.repo_id} if repo.repo_type == "model" else {}))

    def tree(self, rev: str, path: str = "", **repo_args) -> int:
        commit = self._repo(**repo_args).resolve(rev)
        return self._send(200, commit.list_folder(path.strip("/"), recursive=self._flag("recursive")))

    def paths_info(self, rev: str, **repo_args) -> int:
        commit = self._repo(**repo_args).resolve(rev)
        form = parse_qs(self.body.decode())
        entries = (commit.path_entry(path) for path in dict.fromkeys(form.get("paths", [])))
        return self._send(200, [entry for entry in entries if entry is not None])

    def refs(self, **repo_args) -> int:
        repo = self._repo(**repo_args)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in repo.branches.items()
        ]
        return self._send(200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def create_branch(self, rev: str, **repo_args) -> int:
        self._require_token()
        repo, payload = self._repo(**repo_args), self._json()
        with self.hub.lock:
            if rev in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{rev}")
            repo.branches[rev] = repo.resolve(payload.get("startingPoint") or "main").oid
        return self._send(200, {})

    # Uploads and commits

    def preupload(self, rev: str, **repo_args) -> int:
        self._require_token()
        repo, payload = self._repo(**repo_args), self._json()
        commit = repo.resolve(rev)
        attributes = commit.files.get(".gitattributes", StoredFile(b"")).data.decode(errors="replace").splitlines()
        lfs_patterns = [line.split()[0] for line in attributes if "filter=lfs" in line]
        answers = []
        for file in payload.get("files", []):
            path, sample = file["path"], base64.b64decode(file.get("sample", ""))
            # A gitattributes pattern without a slash matches the file name in any folder.
            tracked = any(fnmatch.fnmatch(path if "/" in p else path.rsplit("/", 1)[-1], p) for p in lfs_patterns)
            lfs = tracked or b"\0" in sample or file.get("size", 0) > MAX_REGULAR_FILE_SIZE
            answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if path in commit.files:
                existing = commit.files[path]
                answer["oid"] = existing.sha256 if lfs else _git_blob_id(existing.data)
            answers.append(answer)
        return self._send(200, {"files": answers, "commitOid": commit.oid})

    def lfs_batch(self, **repo_args) -> int:
        self._require_token()
        self._repo(**repo_args)
        payload = self._json()
        if payload.get("operation") != "upload":
            raise HubError(400, f"LFS operation {payload.get('operation')!r} is not implemented (only 'upload')")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            answer = {"oid": oid, "size": size, "authenticated": True}
            with self.hub.lock:
                if oid not in self.hub.lfs_objects:
                    self.hub.pending_lfs[oid] = size
                    answer["actions"] = {"upload": {"href": f"{self.hub.endpoint}/lfs-objects/{oid}", "header": {}}}
            objects.append(answer)
        lfs_json = {"Content-Type": "application/vnd.git-lfs+json"}
        return self._send(200, {"transfer": "basic", "objects": objects}, lfs_json)

    def lfs_upload(self, oid: str) -> int:
        data = self.body
        with self.hub.lock:
            if oid not in self.hub.pending_lfs:
                raise HubError(403, f"No upload of LFS object {oid} was announced to the batch endpoint")
            if hashlib.sha256(data).hexdigest() != oid or len(data) != self.hub.pending_lfs[oid]:
                raise HubError(400, f"The uploaded content does not match LFS object {oid} (sha256 or size differs)")
            self.hub.lfs_objects[oid] = data
            del self.hub.pending_lfs[oid]
        return self._send(200)

    def commit(self, rev: str, **repo_args) -> int:
        self._require_token()
        repo = self._repo(**repo_args)
        if self.query.get("create_pr") == "1":
            raise HubError(400, "Pull requests (create_pr) are not implemented by the test Hub server")
        lines = [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "A commit's NDJSON body must start with a 'header' line")
        header = lines[0]["value"]
        with self.hub.lock:
            if rev not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
            files = dict(repo.resolve(rev).files)
            if header.get("parentCommit") not in (None, repo.branches[rev]):
                raise HubError(412, f"A commit has happened since {header['parentCommit']}: pull first")
            for line in lines[1:]:
                self._apply(line.get("key"), line.get("value", {}), files)
            commit = repo.add_commit(rev, header.get("summary", ""), files)
        url = f"{self.hub.endpoint}/{repo.url_path}/commit/{commit.oid}"
        return self._send(200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})

    def _apply(self, key: str, value: dict, files: dict[str, StoredFile]):
        path = value.get("path", "")
        if key == "file":
            data = base64.b64decode(value["content"])
            if b"\0" in data[:8000] or len(data) > MAX_REGULAR_FILE_SIZE:
                raise HubError(400, f"Your push was rejected because {path} is binary or over 10 MB: use LFS")
            files[path] = StoredFile(data)
        elif key == "lfsFile":
            if value["oid"] not in self.hub.lfs_objects:
                raise HubError(400, f"LFS object {value['oid']} of {path} was never uploaded")
            files[path] = StoredFile(self.hub.lfs_objects[value["oid"]], sha256=value["oid"])
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            inside = [name for name in files if name.startswith(path.rstrip("/") + "/")]
            if not inside:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for name in inside:
                del files[name]
        else:
            raise HubError(400, f"Commit operation {key!r} is not implemented by the test Hub server")

    # Downloads

    def resolve(self, rev: str, path: str, **repo_args) -> int:
        commit = self._repo(**repo_args).resolve(rev)
        stored = commit.files.get(path)
        if stored is None:
            # The commit id lets huggingface_hub cache that the file does not exist at this commit.
            raise HubError(
                404, f"Entry not found: {path} at {commit.oid}", "EntryNotFound", {"X-Repo-Commit": commit.oid}
            )
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{stored.etag}"', "Accept-Ranges": "bytes"}
        headers["Content-Type"] = "application/octet-stream"
        data, status, size = stored.data, 200, stored.size
        if match := re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "")):  # HfFileSystem reads ranges
            first, last = match.groups()
            start = int(first) if first else max(size - int(last or 0), 0)  # "bytes=-N": the last N bytes
            end = min(int(last), size - 1) if first and last else size - 1
            if start >= size > 0:
                raise HubError(416, f"Range {self.headers['Range']} is outside {path} ({size} bytes)")
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            data, status = data[start : end + 1], 206
        return self._send(status, data, headers | {"Content-Length": len(data)})


class HubServer:
    """A Hub-compatible server on 127.0.0.1 (a free port), serving from a thread; use as a context manager.

    Args:
        token (`str`, *optional*, defaults to `HUB_TOKEN`):
            The only token accepted for writes.
        user (`str`, *optional*, defaults to `HUB_USER`):
            The user `whoami` names; repos created without a namespace go under it.
    """

    def __init__(self, token: str = HUB_TOKEN, user: str = HUB_USER):
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.pending_lfs: dict[str, int] = {}  # sha256 -> size, announced to the batch endpoint, not yet uploaded
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), in the order answered
        self.lock = threading.RLock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), HubRequestHandler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision, `{path: content}`."""
        commit = self.repos[repo_type, repo_id].resolve(revision)
        return {path: stored.data for path, stored in commit.files.items()}


def use_hub_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str, token: str, hf_home) -> None:
    """Points huggingface_hub, datasets and transformers (imported or not) at `endpoint`, with caches in `hf_home`.

    The environment variables cover a library imported later. The module attributes are patched because
    huggingface_hub and datasets read the variables into constants at import time: `huggingface_hub.constants`
    (`ENDPOINT` and the resolve-URL template built from it, the cache and token paths, offline and Xet switches),
    the module-level `HfApi` behind `huggingface_hub.create_repo` & co. (its `endpoint` was fixed when it was
    built), and `datasets.config` (`HF_ENDPOINT`, `HUB_DATASETS_URL`, its caches). transformers reads
    `huggingface_hub.constants` when it calls, so it follows, except for its shared `HfApi`, which is dropped to be
    rebuilt; its remote-code modules cache (`HF_MODULES_CACHE`, already on `sys.path`) is left where it is.
    """
    import datasets
    import huggingface_hub
    from huggingface_hub import constants

    hub_cache, datasets_cache = str(hf_home / "hub"), hf_home / "datasets"
    env = {"HF_ENDPOINT": endpoint, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}
    env |= {"HF_HOME": str(hf_home), "HF_HUB_CACHE": hub_cache, "HF_DATASETS_CACHE": str(datasets_cache)}
    env |= {"HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)

    patches = {
        constants: {
            "ENDPOINT": endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": hub_cache,
            "HF_ASSETS_CACHE": str(hf_home / "assets"),
            "HF_TOKEN_PATH": str(hf_home / "token"),
            "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_DISABLE_TELEMETRY": True,
        },
        huggingface_hub.hf_api.api: {"endpoint": endpoint},
        datasets.config: {
            "HF_ENDPOINT": endpoint,
            "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False,
            "HF_DATASETS_OFFLINE": False,
            "HF_CACHE_HOME": str(hf_home),
            "HF_DATASETS_CACHE": datasets_cache,
            "DOWNLOADED_DATASETS_PATH": datasets_cache / "downloads",
            "EXTRACTED_DATASETS_PATH": datasets_cache / "downloads" / "extracted",
            # Both would reach out of 127.0.0.1: the dataset viewer's host and an S3 download counter.
            "USE_PARQUET_EXPORT": False,
            "HF_UPDATE_DOWNLOAD_COUNTS": False,
        },
    }
    for target, attributes in patches.items():
        for name, value in attributes.items():
            monkeypatch.setattr(target, name, value)
    # fsspec keeps one HfFileSystem per constructor arguments, with its endpoint, token and listings; one made for
    # an earlier test's server (by datasets, say) would answer this test from stale state.
    huggingface_hub.HfFileSystem.clear_instance_cache()
    # transformers (5.24) routes its Hub calls (the trainer's create_repo and upload, processor file listings)
    # through one shared HfApi, whose endpoint is fixed when it is first built: drop one built for an earlier server.
    transformers_hub = sys.modules.get("transformers.utils.hub")
    if transformers_hub is not None and hasattr(transformers_hub, "_hf_api"):
        monkeypatch.setattr(transformers_hub, "_hf_api", None)


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A fresh `HubServer` for one test, with every Hub client pointed at it and caches under `tmp_path/hf_home`."""
    with HubServer() as server:
        use_hub_endpoint(monkeypatch, server.endpoint, server.token, tmp_path / "hf_home")
        yield server


__all__ = ["HUB_TOKEN", "HUB_USER", "HubServer", "hub_server", "use_hub_endpoint"]
