"""The tokenizer of an original InternVL checkpoint: loaded with InternVL's image tokens, checked against the source.

Part of the InternVL checkpoint converter, whose entry point is [`convert_checkpoint`] in `convert_occ_internvl.py`.
A tokenizer with a `tokenizer.json` (Qwen2, Phi-3) is loaded as it is; InternLM2's (`tokenizer.model` + remote code
`InternLM2Tokenizer`) is converted into a fast tokenizer that gives the same ids, without running the remote code
([`convert_internlm2_tokenizer`], needs `protobuf`: the `convert` extra). A tokenizer given instead of the source's
own (`tokenizer=`) may be any fast tokenizer of the same vocabulary. Either way it is checked against the ids the
source's `tokenizer_config.json` records for its added tokens (`<IMG_CONTEXT>`, `<|im_end|>`, ...)
([`check_tokenizer_fits_source`]).

```python
tokenizer = convert_internlm2_tokenizer("InternVL2-2B")   # a PreTrainedTokenizerFast
```
"""

import os
import shutil
from pathlib import Path

from transformers import AutoTokenizer

from .convert_source import CheckpointConversionError, read_json_object
from .processing_occ_internvl import IMAGE_TOKENS


__all__ = ["check_tokenizer_fits_source", "convert_internlm2_tokenizer", "load_tokenizer"]

_TOKENIZER_FILES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model",
}  # fmt: skip


def check_tokenizer_fits_source(tokenizer, folder: Path, vocab_size: int) -> None:
    """
    Checks that a tokenizer used for the checkpoint in `folder` gives the source's added tokens (`<IMG_CONTEXT>`,
    `<|im_end|>`, ...) the ids that its `tokenizer_config.json` and `added_tokens.json` record, and has no token past
    the language model's embeddings but InternVL's video token.

    Args:
        tokenizer (`PreTrainedTokenizerFast`): The tokenizer, as [`load_tokenizer`] returns it.
        folder (`Path`): The source checkpoint folder.
        vocab_size (`int`): The language model's number of embeddings.

    Raises:
        [`CheckpointConversionError`]: A token has another id, or lies beyond the embeddings.
    """
    expected = {}
    config_path, added_path = folder / "tokenizer_config.json", folder / "added_tokens.json"
    if config_path.is_file():
        decoder = read_json_object(config_path).get("added_tokens_decoder", {})
        expected |= {entry["content"]: int(token_id) for token_id, entry in decoder.items()}
    if added_path.is_file():
        expected |= read_json_object(added_path)
    wrong = {token: (token_id, tokenizer.convert_tokens_to_ids(token)) for token, token_id in expected.items()}
    wrong = {token: ids for token, ids in wrong.items() if ids[0] != ids[1]}
    if wrong:
        shown = ", ".join(f"{token!r} is {ids[1]} not {ids[0]}" for token, ids in list(wrong.items())[:6])
        raise CheckpointConversionError(
            f"{folder}: the tokenizer does not match the checkpoint's own tokens ({shown}); use a tokenizer of the "
            "same vocabulary."
        )
    # InternVLProcessor needs a video token, which InternVL2's vocabularies lack (their videos are frames of images):
    # declared here, it lies past the embeddings, and a converted InternVL2 checkpoint takes no video input.
    beyond = sorted(
        token
        for token, token_id in tokenizer.get_vocab().items()
        if token_id >= vocab_size and token != IMAGE_TOKENS["video_token"]
    )
    if beyond:
        raise CheckpointConversionError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the language model only {vocab_size} embeddings "
            f"(beyond them: {beyond[:6]})."
        )


def load_tokenizer(folder: Path, work: Path):
    """
    The tokenizer of `folder` with InternVL's image tokens declared (InternLM2's converted to a fast tokenizer).

    Args:
        folder (`Path`): A checkpoint or tokenizer folder.
        work (`Path`): A scratch folder, where the tokenizer files are copied to load them without `config.json`.

    Returns:
        `PreTrainedTokenizerFast` or `None`: `None` when `folder` has no tokenizer files, or an InternLM2 tokenizer
        config without its `tokenizer.model`.

    Raises:
        [`CheckpointConversionError`]: The tokenizer does not load, or lacks InternVL's image tokens.
    """
    files = [path for path in folder.iterdir() if path.is_file() and path.name in _TOKENIZER_FILES]
    if not any(path.name in ("tokenizer.json", "tokenizer_config.json") for path in files):
        return None
    # Loaded from a copy without config.json, which AutoTokenizer would otherwise read as a (foreign) model config.
    copy = work / "tokenizer"
    copy.mkdir()
    if not (folder / "tokenizer.json").is_file() and "auto_map" in read_json_object(folder / "tokenizer_config.json"):
        # InternLM2's tokenizer (tokenizer.model + remote code): converted to a fast one, so no remote code runs.
        if not (folder / "tokenizer.model").is_file():
            return None
        convert_internlm2_tokenizer(folder).save_pretrained(copy)
    else:
        for path in files:
            shutil.copyfile(path, copy / path.name)
    try:
        plain = AutoTokenizer.from_pretrained(copy)
        missing = [
            token for key, token in IMAGE_TOKENS.items() if key != "video_token" and token not in plain.get_vocab()
        ]
        if missing:
            raise CheckpointConversionError(f"{folder}: the tokenizer lacks InternVL's image tokens {missing}.")
        return AutoTokenizer.from_pretrained(copy, extra_special_tokens=IMAGE_TOKENS)
    except (OSError, ValueError, TypeError) as error:
        if isinstance(error, CheckpointConversionError):
            raise
        raise CheckpointConversionError(f"{folder}: the tokenizer does not load ({error}).") from error


def convert_internlm2_tokenizer(folder: str | os.PathLike):
    """
    Converts InternLM2's sentencepiece tokenizer (`tokenizer.model` + `tokenizer_config.json`, remote code
    `InternLM2Tokenizer`) into a fast tokenizer that encodes the same ids, without running the remote code.

    The slow tokenizer splits the text at its added tokens and runs `SentencePieceProcessor.encode` on each piece
    between them (so the model's `add_dummy_prefix`, when set, applies to every piece), then puts `<s>` in front
    (`add_bos_token`, true by default; `add_eos_token` appends `</s>`). The fast tokenizer is built from the model's
    proto by transformers' `SpmConverter.build_tokenizer_from_spm_proto` in its `legacy` mode, which follows the same
    normalizer settings (character map, whitespace, dummy prefix on every piece), BPE merges ranked by piece score,
    and byte fallback. The added tokens of `tokenizer_config.json` keep their ids: one inside the sentencepiece
    vocabulary replaces that piece (as the slow tokenizer's `added_tokens_decoder` overrides it), one past it is
    appended, and the ids must then run on without a gap.

    Needs `protobuf` (to read the model file; `pip install "occ-hf[convert]"`), not `sentencepiece`.

    Args:
        folder (`str` or `os.PathLike`): The folder with `tokenizer.model` and `tokenizer_config.json`.

    Returns:
        `PreTrainedTokenizerFast`: The fast tokenizer, with the slow one's `<s>`, `</s>`, `<unk>` and pad tokens.
    """
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf
    from transformers.utils import is_protobuf_available

    folder = Path(folder)
    model_path, config_path = folder / "tokenizer.model", folder / "tokenizer_config.json"
    if not is_protobuf_available():
        raise CheckpointConversionError(
            f"{model_path}: converting InternLM2's sentencepiece tokenizer needs protobuf; pip install "
            '"occ-hf[convert]" (or pass --tokenizer a fast tokenizer of the same vocabulary).'
        )
    tokenizer_config = read_json_object(config_path) if config_path.is_file() else {}
    proto = import_protobuf().ModelProto()
    try:
        proto.ParseFromString(model_path.read_bytes())
    except Exception as error:  # protobuf's DecodeError is not importable without protobuf
        raise CheckpointConversionError(f"{model_path}: not a sentencepiece model ({error}).") from error
    if proto.trainer_spec.model_type != 2:  # sentencepiece's ModelType enum: 1 unigram, 2 BPE
        raise CheckpointConversionError(
            f"{model_path}: a sentencepiece model of type {proto.trainer_spec.model_type}, not BPE (2) as "
            "InternLM2's; pass --tokenizer a fast tokenizer of the same vocabulary."
        )

    added = {int(token_id): entry for token_id, entry in tokenizer_config.get("added_tokens_decoder", {}).items()}
    vocab = {piece.piece: token_id for token_id, piece in enumerate(proto.pieces)}
    for token_id, entry in added.items():
        if token_id < len(proto.pieces) and entry["content"] != proto.pieces[token_id].piece:
            del vocab[proto.pieces[token_id].piece]
            vocab[entry["content"]] = token_id
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    backend.add_special_tokens(
        [
            AddedToken(
                entry["content"],
                single_word=entry.get("single_word", False),
                lstrip=entry.get("lstrip", False),
                rstrip=entry.get("rstrip", False),
                normalized=entry.get("normalized", False),
                special=entry.get("special", True),
            )
            for _, entry in sorted(added.items())
        ]
    )
    for token_id, entry in sorted(added.items()):
        if backend.token_to_id(entry["content"]) != token_id:
            raise CheckpointConversionError(
                f"{config_path}: added token {entry['content']!r} has id {token_id}, but the ids after the "
                f"sentencepiece vocabulary ({len(proto.pieces)} pieces) must run on without a gap; pass --tokenizer "
                "a fast tokenizer of the same vocabulary."
            )

    def token(name: str, default: str) -> str:
        value = tokenizer_config.get(name, default)
        return value["content"] if isinstance(value, dict) else value

    bos, eos = token("bos_token", "<s>"), token("eos_token", "</s>")
    add_bos, add_eos = tokenizer_config.get("add_bos_token", True), tokenizer_config.get("add_eos_token", False)
    single = [f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos
    pair = single + ["$B:1"] + [f"{eos}:1"] * add_eos  # the slow tokenizer puts no <s> before the second text
    backend.post_processor = processors.TemplateProcessing(
        single=" ".join(single),
        pair=" ".join(pair),
        special_tokens=[(bos, backend.token_to_id(bos)), (eos, backend.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        unk_token=token("unk_token", "<unk>"),
        pad_token=token("pad_token", "</s>"),
        padding_side=tokenizer_config.get("padding_side", "left"),
        clean_up_tokenization_spaces=tokenizer_config.get("clean_up_tokenization_spaces", False),
    )
