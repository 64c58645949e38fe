"""The local Hub server (`tests/hub_server.py`) driven by the real clients: what huggingface_hub, datasets and
transformers push to it, they load back unchanged, through the same calls they make to huggingface.co."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset
from huggingface_hub import (
    DatasetCard,
    DatasetCardData,
    HfApi,
    HfFileSystem,
    ModelCard,
    ModelCardData,
    RepoFile,
    RepoFolder,
    get_session,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from PIL import Image as PILImage
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from .hub_server import HUB_USER


MODEL_REPO = f"{HUB_USER}/tiny-model"
DATASET_REPO = f"{HUB_USER}/tiny-data"
# Binary (it holds NUL bytes), so the server asks for LFS although the name matches no LFS pattern.
WEIGHTS = bytes(range(256)) * 12


def _lfs_puts(hub_server) -> list[str]:
    return [path for method, path, _ in hub_server.requests if method == "PUT"]


def test_create_repo_model_and_dataset(hub_server):
    api = HfApi()
    model_url = api.create_repo("tiny-model")  # no namespace: the token's user, as on the Hub
    assert (model_url.repo_id, model_url.repo_type) == (MODEL_REPO, "model")
    dataset_url = api.create_repo(DATASET_REPO, repo_type="dataset")
    assert dataset_url == f"{hub_server.endpoint}/datasets/{DATASET_REPO}"

    with pytest.raises(HfHubHTTPError, match="already created") as conflict:
        api.create_repo(DATASET_REPO, repo_type="dataset")
    assert conflict.value.response.status_code == 409
    assert api.create_repo(DATASET_REPO, repo_type="dataset", exist_ok=True).repo_id == DATASET_REPO

    info = api.dataset_info(DATASET_REPO)
    assert info.id == DATASET_REPO and [s.rfilename for s in info.siblings] == [".gitattributes"]
    refs = api.list_repo_refs(DATASET_REPO, repo_type="dataset")
    assert [(ref.name, ref.target_commit) for ref in refs.branches] == [("main", info.sha)]
    assert api.whoami()["name"] == HUB_USER
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(DATASET_REPO)  # a dataset, not a model
    api.delete_repo(MODEL_REPO)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(MODEL_REPO)


def test_upload_file_regular_and_lfs_then_download(hub_server):
    api = HfApi()
    api.create_repo(MODEL_REPO)
    first = api.upload_file(path_or_fileobj=b"jar\nbottle\n", path_in_repo="labels.txt", repo_id=MODEL_REPO)
    assert _lfs_puts(hub_server) == []  # small text goes inline in the commit
    second = api.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="weights/w.dat", repo_id=MODEL_REPO)
    sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    assert _lfs_puts(hub_server) == [f"/lfs-objects/{sha256}"]

    info = api.model_info(MODEL_REPO, files_metadata=True)
    siblings = {sibling.rfilename: sibling for sibling in info.siblings}
    assert info.sha == second.oid != first.oid
    assert siblings["labels.txt"].lfs is None and siblings["labels.txt"].size == 11
    assert siblings["weights/w.dat"].lfs.sha256 == sha256 and siblings["weights/w.dat"].size == len(WEIGHTS)

    top = {entry.path: type(entry) for entry in api.list_repo_tree(MODEL_REPO)}
    assert top == {".gitattributes": RepoFile, "labels.txt": RepoFile, "weights": RepoFolder}
    assert [entry.path for entry in api.list_repo_tree(MODEL_REPO, "weights")] == ["weights/w.dat"]
    assert {entry.path for entry in api.list_repo_tree(MODEL_REPO, recursive=True)} == {*top, "weights/w.dat"}
    paths = api.get_paths_info(MODEL_REPO, ["weights", "labels.txt", "missing.txt"])
    assert [(type(entry), entry.path) for entry in paths] == [(RepoFolder, "weights"), (RepoFile, "labels.txt")]

    assert Path(hf_hub_download(MODEL_REPO, "weights/w.dat")).read_bytes() == WEIGHTS
    assert Path(hf_hub_download(MODEL_REPO, "labels.txt", revision=first.oid)).read_bytes() == b"jar\nbottle\n"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(MODEL_REPO, "weights/w.dat", revision=first.oid)  # not there yet at the first commit
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(MODEL_REPO, "no-such-folder"))
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(MODEL_REPO, "labels.txt", revision="no-such-branch")

    with HfFileSystem(skip_instance_cache=True).open(f"{MODEL_REPO}/weights/w.dat", "rb", block_size=100) as file:
        file.seek(1000)
        assert file.read(200) == WEIGHTS[1000:1200]  # served by Range requests
    # Partial content, whether the filesystem asked for the branch or the commit it resolved the branch to.
    ranged = [path for method, path, status in hub_server.requests if method == "GET" and status == 206]
    assert any(p.startswith(f"/{MODEL_REPO}/resolve/") and p.endswith("/weights/w.dat") for p in ranged), ranged


def test_upload_folder_then_snapshot_download(hub_server, tmp_path):
    folder = tmp_path / "checkpoint"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "sub" / "model.safetensors").write_bytes(b"not really safetensors")  # LFS by its name
    (folder / "old.txt").write_text("to be deleted")
    api = HfApi()
    api.create_repo(MODEL_REPO)
    first = api.upload_folder(folder_path=folder, repo_id=MODEL_REPO)
    (folder / "old.txt").unlink()
    (folder / "config.json").write_text('{"hidden_size": 16}')
    api.upload_folder(folder_path=folder, repo_id=MODEL_REPO, delete_patterns=["*.txt"])

    local = snapshot_download(MODEL_REPO, local_dir=tmp_path / "download")
    downloaded = {path.relative_to(local).as_posix() for path in (tmp_path / "download").rglob("*") if path.is_file()}
    assert {name for name in downloaded if not name.startswith(".cache/")} == {
        ".gitattributes",
        "config.json",
        "sub/model.safetensors",
    }
    assert json.loads((tmp_path / "download" / "config.json").read_text()) == {"hidden_size": 16}
    assert (tmp_path / "download" / "sub" / "model.safetensors").read_bytes() == b"not really safetensors"
    assert hub_server.repos["model", MODEL_REPO].resolve("main").files["sub/model.safetensors"].sha256

    old = Path(snapshot_download(MODEL_REPO, revision=first.oid))
    assert old.is_relative_to(tmp_path / "hf_home" / "hub")  # the fixture's cache, not the user's
    assert (old / "old.txt").read_text() == "to be deleted"
    assert json.loads((old / "config.json").read_text()) == {"hidden_size": 8}


def test_model_card_and_dataset_card_round_trip(hub_server):
    data = ModelCardData(license="mit", library_name="transformers", tags=["occ-hf"], datasets=[DATASET_REPO])
    HfApi().create_repo(MODEL_REPO)
    ModelCard.from_template(data, model_id="tiny-model").push_to_hub(MODEL_REPO)
    loaded = ModelCard.load(MODEL_REPO)
    assert loaded.data.to_dict() == data.to_dict() and "# Model Card for tiny-model" in loaded.text
    assert HfApi().model_info(MODEL_REPO).card_data.license == "mit"  # the server parses the YAML, as the Hub

    HfApi().create_repo(DATASET_REPO, repo_type="dataset")
    DatasetCard.from_template(DatasetCardData(license="mit", task_categories=["image-classification"])).push_to_hub(
        DATASET_REPO
    )
    assert DatasetCard.load(DATASET_REPO).data.task_categories == ["image-classification"]

    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        HfApi().upload_file(path_or_fileobj=b"---\nlicense: [mit\n---\n", path_in_repo="README.md", repo_id=MODEL_REPO)


def _images(count: int, seed: int = 0) -> list[PILImage.Image]:
    rng = np.random.default_rng(seed)
    return [PILImage.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)) for _ in range(count)]


def test_dataset_dict_push_to_hub_then_load_dataset(hub_server, tmp_path):
    images = _images(6)
    features = Features({"image": Image(), "label": ClassLabel(names=["jar", "bottle"])})
    splits = {"train": (images[:4], [0, 1, 0, 1]), "test": (images[4:], [1, 0])}
    pushed = DatasetDict(
        {
            name: Dataset.from_dict({"image": imgs, "label": labels}, features=features)
            for name, (imgs, labels) in splits.items()
        }
    )
    pushed.push_to_hub(DATASET_REPO)

    files = hub_server.files("dataset", DATASET_REPO)
    shards = sorted(name for name in files if name.endswith(".parquet"))
    assert shards == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    table = pq.read_table(io.BytesIO(files["data/train-00000-of-00001.parquet"]))
    assert all(cell["bytes"] for cell in table.column("image").to_pylist())  # images embedded, not paths
    assert "configs:" in files["README.md"].decode() and "path: data/train-*" in files["README.md"].decode()

    loaded = load_dataset(DATASET_REPO)
    assert loaded["train"].features == features and loaded.num_rows == {"train": 4, "test": 2}
    assert Path(loaded["train"].cache_files[0]["filename"]).is_relative_to(tmp_path / "hf_home" / "datasets")
    for name, (imgs, labels) in splits.items():
        assert loaded[name]["label"] == labels
        assert all(
            np.array_equal(np.asarray(row["image"]), np.asarray(img))
            for row, img in zip(loaded[name], imgs, strict=True)
        )
    streamed = next(iter(load_dataset(DATASET_REPO, split="test", streaming=True)))
    assert np.array_equal(np.asarray(streamed["image"]), np.asarray(images[4])) and streamed["label"] == 1


def _tiny_tokenizer() -> PreTrainedTokenizerFast:
    words = ["[UNK]", "[PAD]", "the", "object", "is", "a", "jar", "bottle", "can", "."]
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")


def test_pretrained_model_push_to_hub_then_from_pretrained(hub_server):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    model, tokenizer = LlamaForCausalLM(config), _tiny_tokenizer()
    model.push_to_hub("tiny-model")
    tokenizer.push_to_hub("tiny-model")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(hub_server.files("model", MODEL_REPO))

    loaded = AutoModelForCausalLM.from_pretrained(MODEL_REPO)
    assert type(loaded) is LlamaForCausalLM
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(tensor, expected[name]) for name, tensor in loaded.state_dict().items())
    text = "the object is a jar ."
    assert AutoTokenizer.from_pretrained(MODEL_REPO)(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_bad_requests_get_errors_that_name_the_problem(hub_server):
    api = HfApi()
    with pytest.raises(HfHubHTTPError, match="Invalid credentials") as unauthorized:
        api.create_repo(MODEL_REPO, token="hf_wrong")
    assert unauthorized.value.response.status_code == 401
    first = api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=api.create_repo(MODEL_REPO).repo_id)
    api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=MODEL_REPO)
    with pytest.raises(HfHubHTTPError, match="A commit has happened since") as stale:
        api.upload_file(path_or_fileobj=b"c", path_in_repo="c.txt", repo_id=MODEL_REPO, parent_commit=first.oid)
    assert stale.value.response.status_code == 412

    session, auth = get_session(), {"Authorization": f"Bearer {hub_server.token}"}
    missing_oid = hashlib.sha256(b"never uploaded").hexdigest()
    lines = [
        {"key": "header", "value": {"summary": "x"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "oid": missing_oid}},
    ]
    commit_url = f"{hub_server.endpoint}/api/models/{MODEL_REPO}/commit/main"
    answer = session.post(commit_url, headers=auth, content="\n".join(json.dumps(line) for line in lines))
    assert answer.status_code == 400 and f"LFS object {missing_oid} of w.bin was never uploaded" in answer.text

    batch_url = f"{hub_server.endpoint}/{MODEL_REPO}.git/info/lfs/objects/batch"
    batch = {"operation": "upload", "objects": [{"oid": missing_oid, "size": 14}]}
    href = session.post(batch_url, headers=auth, json=batch).json()["objects"][0]["actions"]["upload"]["href"]
    assert session.put(href, content=b"something else").status_code == 400  # sha256 does not match
    assert session.put(href, content=b"never uploaded").status_code == 200

    with pytest.raises(HfHubHTTPError, match="is not implemented by the test Hub server"):
        api.list_repo_commits(MODEL_REPO)
