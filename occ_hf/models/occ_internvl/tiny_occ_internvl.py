"""A tiny random OccInternVL checkpoint with a real processor and tokenizer, built offline (`occ-hf init-tiny OUT`).

The tokenizer is a byte-level BPE trained with the `tokenizers` library on the prompts of both training styles (`code`,
`paper`) and their answers, so every OCC string encodes to a few tokens and decodes back exactly; the chat template is
ChatML (as InternVL2-1B's Qwen2) with `{% generation %}` markers (TRL's `assistant_only_loss=True`) and the stage
prompts of every style (`code_published` too). The default network is the ~0.3M-parameter InternVL that DESIGN.md
found to learn on 2 CPU cores: 112 px images, patch 14, pixel-shuffle 0.5 (16 image tokens), vision and Qwen2 hidden
size 64, 2 layers, 4 heads, MLP 256.

```bash
occ-hf init-tiny runs/tiny --seed 0
occ-hf init-tiny runs/tiny --seed 1 --overwrite   # a non-empty folder is refused without --overwrite
```
```python
from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

model, processor = init_tiny_checkpoint(TinyOccInternVLConfig(output_dir="runs/tiny"))
```
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...cot.prompts import COT_ANSWER, COT_QUESTION, PROMPT_STYLES, checkpoint_prompt_tables
from .configuration_occ_internvl import OCC_CLASS_NAMES
from .processing_occ_internvl import IMAGE_TOKENS, add_stage_prompts
from .prompts_occ_internvl import IMAGE_MARKER


__all__ = ["TinyOccInternVLConfig", "build_chat_template", "build_tokenizer", "init_tiny_checkpoint"]

PAD_TOKEN = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"


@dataclass
class TinyOccInternVLConfig:
    r"""
    Configuration of `occ-hf init-tiny OUTPUT_DIR`.

    Parameters:
        output_dir (`str`): Where the checkpoint (weights, config, processor, tokenizer) is written; it must be
            empty or absent unless `overwrite`.
        overwrite (`bool`, *optional*, defaults to `False`): Write into a non-empty `output_dir`: the checkpoint's
            files (`config.json`, `model.safetensors`, the processor and tokenizer files, ...) replace those of the
            same name, and weight files of an earlier save that this one does not write are removed (as
            `save_pretrained` does); other files are kept.

        > Parameters that control the network

        image_size (`int`, *optional*, defaults to `112`): Input size of the vision tower (one tile per image).
        patch_size (`int`, *optional*, defaults to `14`): Vision patch size.
        hidden_size (`int`, *optional*, defaults to `64`): Hidden size of the vision tower and of the Qwen2 LLM.
        num_hidden_layers (`int`, *optional*, defaults to `2`): Layers of each.
        num_attention_heads (`int`, *optional*, defaults to `4`): Attention heads of each (and LLM key/value heads).
        intermediate_size (`int`, *optional*, defaults to `256`): MLP size of each.
        vocab_size (`int`, *optional*, defaults to `384`): Size the BPE tokenizer is trained to (specials included).

        > Parameters that control the checkpoint

        prompt_style (`str`, *optional*, defaults to `"code"`): `code` or `paper`, stored as `config.prompt_style`.
        decision_policy (`str`, *optional*, defaults to `"staged"`): `staged` or `joint`.
        seed (`int`, *optional*, defaults to `0`): Seed of the random weights.
    """

    output_dir: str = field(metadata={"help": "Where the checkpoint is written."})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace the checkpoint's files in a non-empty OUTPUT_DIR (other files are kept). Without it a "
            "non-empty OUTPUT_DIR is refused."
        },
    )
    image_size: int = field(default=112, metadata={"help": "Input size of the vision tower."})
    patch_size: int = field(default=14, metadata={"help": "Vision patch size."})
    hidden_size: int = field(default=64, metadata={"help": "Hidden size of the vision tower and the LLM."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Layers of the vision tower and the LLM."})
    num_attention_heads: int = field(default=4, metadata={"help": "Attention heads of the vision tower and LLM."})
    intermediate_size: int = field(default=256, metadata={"help": "MLP size of the vision tower and the LLM."})
    vocab_size: int = field(default=384, metadata={"help": "Size the BPE tokenizer is trained to."})
    prompt_style: str = field(default="code", metadata={"help": "code or paper."})
    decision_policy: str = field(default="staged", metadata={"help": "staged or joint."})
    seed: int = field(default=0, metadata={"help": "Seed of the random weights."})


def _tokenizer_corpus() -> list[str]:
    # Every string the checkpoint is trained on, in its chat rendering, so that BPE merges cover them as wholes. Not
    # the evaluation styles: their strings byte-level encode all the same, and leaving them out keeps every token id
    # (and so every random tiny model) what it was before they were added.
    texts = [COT_QUESTION, COT_ANSWER, "user\n", "assistant\n", "system\n"]
    for style in PROMPT_STYLES.values():
        questions = [*style.describe, style.reflect, style.reflect_at_inference, style.decide]
        texts += [*questions, style.decide_in_conversation, style.joint, style.yes, style.no]
        texts += [style.answer(class_name) for class_name in OCC_CLASS_NAMES]
    return [text.replace(IMAGE_MARKER, "") for text in texts] * 4


def build_tokenizer(vocab_size: int = 384):
    """A byte-level BPE tokenizer trained offline on the OCC prompts, with the image tokens InternVL needs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special_tokens = [PAD_TOKEN, IM_START, IM_END, *IMAGE_TOKENS.values()]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_tokenizer_corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        padding_side="left",
        extra_special_tokens=IMAGE_TOKENS,
    )


def build_chat_template() -> str:
    """ChatML with `{% generation %}` markers and image placeholders, behind the prelude that renders `stage` parts of
    every prompt style ([`add_stage_prompts`])."""
    image = IMAGE_TOKENS["context_image_token"]
    chatml = (
        "{%- for message in messages -%}\n"
        "{{- '" + IM_START + "' + message['role'] + '\\n' -}}\n"
        "{%- set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string "
        "else message['content'] -%}\n"
        "{%- set rendered = namespace(text='') -%}\n"
        "{%- for part in parts -%}\n"
        "{%- if part['type'] == 'text' -%}{%- set rendered.text = rendered.text + part['text'] -%}\n"
        "{%- elif part['type'] == 'image' -%}{%- set rendered.text = rendered.text + '" + image + "' -%}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}\n"
        "{%- if message['role'] == 'assistant' -%}\n"
        "{% generation %}{{- rendered.text + '" + IM_END + "' -}}{% endgeneration %}{{- '\\n' -}}\n"
        "{%- else -%}\n"
        "{{- rendered.text + '" + IM_END + "\\n' -}}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}\n"
        "{%- if add_generation_prompt -%}{{- '" + IM_START + "assistant\\n' -}}{%- endif -%}\n"
    )
    return add_stage_prompts(chatml, checkpoint_prompt_tables(), image)


def _check_output_folder(output_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuses to write a checkpoint into a file, or into a non-empty folder unless `overwrite`; returns the folder."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(
            f"{output_dir}: exists and is not a folder; choose a folder to write the checkpoint to."
        )
    if overwrite or not output_dir.is_dir() or not any(output_dir.iterdir()):
        return output_dir
    held = sum(1 for _ in output_dir.iterdir())
    raise FileExistsError(
        f"{output_dir}: not empty (it holds {held} entries); choose an empty folder, or pass --overwrite "
        "(overwrite=True) to replace the checkpoint's files there (other files are kept)."
    )


def init_tiny_checkpoint(config: TinyOccInternVLConfig):
    """Builds, saves (to `config.output_dir`) and returns a tiny random `(model, processor)`.

    A non-empty `config.output_dir` is refused before anything is built unless `config.overwrite` (see
    [`TinyOccInternVLConfig`]).
    """
    output_dir = _check_output_folder(config.output_dir, config.overwrite)
    import torch
    from transformers import GenerationConfig, GotOcr2ImageProcessor, InternVLVideoProcessor

    from .configuration_occ_internvl import OccInternVLConfig
    from .modeling_occ_internvl import OccInternVLForConditionalGeneration
    from .processing_occ_internvl import OccInternVLProcessor

    tokenizer = build_tokenizer(config.vocab_size)
    size = {"height": config.image_size, "width": config.image_size}
    image_processor = GotOcr2ImageProcessor(size=size, crop_to_patches=False)
    video_processor = InternVLVideoProcessor(size=size)
    image_seq_length = int((config.image_size // config.patch_size) ** 2 * 0.25)
    processor = OccInternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_length=image_seq_length,
        chat_template=build_chat_template(),
    )
    shared = {
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
    }
    model_config = OccInternVLConfig(
        vision_config={**shared, "image_size": config.image_size, "patch_size": config.patch_size},
        text_config={
            **shared,
            "model_type": "qwen2",
            "num_key_value_heads": config.num_attention_heads,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 2048,
            "tie_word_embeddings": False,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=image_seq_length,
        downsample_ratio=0.5,
        prompt_style=config.prompt_style,
        decision_policy=config.decision_policy,
    )
    torch.manual_seed(config.seed)
    model = OccInternVLForConditionalGeneration(model_config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return model, processor
