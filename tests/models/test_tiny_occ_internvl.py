import json

import pytest
from jinja2.exceptions import TemplateError
from transformers import AutoProcessor, AutoTokenizer

from occ_hf.cli import main, run
from occ_hf.cot.prompts import PROMPT_STYLES
from occ_hf.models.occ_internvl import tiny_occ_internvl
from occ_hf.models.occ_internvl.processing_occ_internvl import add_stage_prompts
from occ_hf.obman import OCC_CLASSES


def test_tokenizer_round_trips_every_prompt_and_answer(tiny_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    for style in PROMPT_STYLES.values():
        texts = [*style.describe, style.reflect, style.decide, style.joint, style.yes, style.no]
        texts += [style.answer(name) for name in OCC_CLASSES]
        for text in texts:
            ids = tokenizer(text.replace("<image>", ""), add_special_tokens=False)["input_ids"]
            assert tokenizer.decode(ids) == text.replace("<image>", "")
            assert len(ids) <= 2 * len(text.split()) + 1, (text, len(ids))  # trained on these strings: merged words
    published = (
        "Is it clear to identify the object in the hand??\n"  # an evaluation style's: not trained on, but exact
    )
    assert tokenizer.decode(tokenizer(published, add_special_tokens=False)["input_ids"]) == published
    answer_lengths = [len(tokenizer(style.answer(name))["input_ids"]) for name in OCC_CLASSES]
    assert max(answer_lengths) <= 6, answer_lengths
    assert tokenizer.context_image_token == "<IMG_CONTEXT>" and tokenizer.start_image_token == "<img>"


def test_chat_template_stage_parts_and_generation_markers(tiny_dir, images_and_views):
    processor = AutoProcessor.from_pretrained(tiny_dir)
    image = images_and_views[0][0]
    by_text = [
        {"role": "user", "content": [{"type": "text", "text": "What's the object in the hand?\n"}, {"type": "image"}]}
    ]
    by_stage = [{"role": "user", "content": [{"type": "stage", "stage": "describe"}, {"type": "image"}]}]
    rendered = processor.apply_chat_template(by_text, add_generation_prompt=True, tokenize=False)
    assert (
        rendered
        == "<|im_start|>user\nWhat's the object in the hand?\n<IMG_CONTEXT><|im_end|>\n<|im_start|>assistant\n"
    )
    assert processor.apply_chat_template(by_stage, add_generation_prompt=True, tokenize=False) == rendered
    paper = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "stage", "stage": "describe", "index": 1}]}], prompt_style="paper"
    )
    assert "Is the object in the hand thin?" in paper
    conversation = [
        {"role": "user", "content": [{"type": "stage", "stage": "describe"}, {"type": "image", "image": image}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The object is jar."}]},
    ]
    out = processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt"
    )
    answer_ids = out["input_ids"][0][out["assistant_masks"][0].bool()]
    assert processor.decode(answer_ids) == "The object is jar.<|im_end|>"
    assert (out["input_ids"][0] == processor.image_token_id).sum() == 16  # 112 px, patch 14, pixel shuffle 0.5


def test_init_tiny_cli(tmp_path):
    main(["init-tiny", str(tmp_path / "tiny"), "--prompt_style", "paper", "--seed", "3"])
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert config["model_type"] == "occ_internvl" and config["prompt_style"] == "paper"
    assert config["text_config"]["hidden_size"] == 64 and config["image_seq_length"] == 16
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "tiny")
    assert 250_000 < model.num_parameters() < 400_000


def test_init_tiny_refuses_a_non_empty_folder_or_a_file_before_building_unless_overwrite(
    tmp_path, capsys, monkeypatch
):
    """init-tiny wrote over an existing checkpoint silently, and into an existing file gave a bare FileExistsError."""
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "model-00001-of-00002.safetensors").write_bytes(b"a shard of an earlier, larger save")
    with monkeypatch.context() as patched:
        patched.setattr(tiny_occ_internvl, "build_tokenizer", lambda *args: pytest.fail("built before the check"))
        assert run(["init-tiny", str(out)]) == 1
        error = capsys.readouterr().err.splitlines()[0]
        assert error == (
            f"occ-hf: error: FileExistsError: {out}: not empty (it holds 2 entries); choose an empty folder, or pass "
            "--overwrite (overwrite=True) to replace the checkpoint's files there (other files are kept)."
        )
        (tmp_path / "a_file").write_text("")
        assert run(["init-tiny", str(tmp_path / "a_file")]) == 1
        assert capsys.readouterr().err.splitlines()[0] == (
            f"occ-hf: error: NotADirectoryError: {tmp_path / 'a_file'}: exists and is not a folder; choose a folder "
            "to write the checkpoint to."
        )
    assert sorted(path.name for path in out.iterdir()) == ["model-00001-of-00002.safetensors", "notes.txt"]
    main(["init-tiny", str(out), "--overwrite"])
    names = {path.name for path in out.iterdir()}
    assert {"config.json", "model.safetensors", "notes.txt"} <= names
    assert "model-00001-of-00002.safetensors" not in names  # no stale shard left to be loaded with the new one
    assert (out / "notes.txt").read_text() == "mine"


def test_init_tiny_help_names_overwrite(capsys):
    with pytest.raises(SystemExit):
        main(["init-tiny", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Replace the checkpoint's files in a non-empty OUTPUT_DIR" in help_text


@pytest.mark.parametrize("template", ["init-tiny", "add_stage_prompts"])
def test_unknown_stage_style_or_index_is_named(tiny_dir, template):
    """A stage part naming no stage rendered into jinja's UndefinedError; both stage-aware templates now say which."""
    processor = AutoProcessor.from_pretrained(tiny_dir)
    if template == "add_stage_prompts":  # the converter's form: any chat template with the stage prelude
        prompts = json.loads((tiny_dir / "config.json").read_text())["prompts"]
        plain = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        processor.chat_template = add_stage_prompts(plain, prompts, "<IMG_CONTEXT>")

    def render(part, **kwargs):
        return processor.apply_chat_template([{"role": "user", "content": [part]}], **kwargs)

    assert "What's the object in the hand?" in render({"type": "stage", "stage": "describe"})
    with pytest.raises(TemplateError, match="Unknown stage nonexistent in a stage part: use one of describe, reflect"):
        render({"type": "stage", "stage": "nonexistent"})
    known = r"(code|code_published|paper)"  # every style, in the order the template's table holds them
    with pytest.raises(
        TemplateError, match=rf"Unknown prompt_style poem: this chat template knows {known}(, {known}){{2}}\."
    ):
        render({"type": "stage", "stage": "describe"}, prompt_style="poem")
    with pytest.raises(TemplateError, match="Stage describe has 3 questions: index must be 0 to 2, got 3"):
        render({"type": "stage", "stage": "describe", "index": 3}, prompt_style="paper")
