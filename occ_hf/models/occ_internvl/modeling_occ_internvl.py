"""`OccInternVLForConditionalGeneration`: transformers' InternVL with OCC-MLLM-CoT's three-stage recognition.

This file is copied next to every saved checkpoint (`auto_map`), so it imports only torch and transformers.

```python
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("runs/tiny")      # `import occ_hf` first, or trust_remote_code
processor = AutoProcessor.from_pretrained("runs/tiny")
results = model.recognize(rgb_images, views=view_images, processor=processor)
results[0].label, results[0].clear, results[0].describe, results[0].reflect, results[0].decide
```

The stages follow the seed's `inferenceImageAcc.py`: *describe* asks the class question on the RGB image; *reflect*
asks the clarity question with the first turn as history; *decide* keeps the described class when the answer is yes,
and when it is no asks the class question again, without history, on the 3D view. The `joint` policy instead gives
the RGB image and the 3D view in one prompt, then reflects. Conversations run batched with left padding; the second
and later turns reuse the previous turn's KV cache up to the first token where the re-rendered conversation differs
from what the model saw (see `_BatchedChat`).
"""

from dataclasses import asdict, dataclass

import torch
from transformers import AutoProcessor, InternVLForConditionalGeneration
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.image_utils import is_valid_image

from .configuration_occ_internvl import DECISION_POLICIES, OccInternVLConfig
from .processing_occ_internvl import question_content


@dataclass
class OccRecognition:
    r"""
    What [`OccInternVLForConditionalGeneration.recognize`] found for one image.

    Parameters:
        describe (`list[str]`): The answers to the describe questions (one in the `code` style, three in `paper`;
            with the `joint` policy, the answer to the joint question).
        reflect (`str`): The answer to the clarity question.
        decide (`str` or `None`): The answer to the class question of the decision stage; `None` when the decision
            kept the described class, or when the view was needed but missing.
        label (`str` or `None`): The recognised class, `None` when the deciding answer names none of
            `config.class_names` or the view was missing (the seed counts both as wrong).
        describe_label (`str` or `None`): The class the describe stage named (`None` in the `paper` style).
        clear (`bool` or `None`): The parsed clarity answer (`None` when it is neither yes nor no).
        used_view (`bool`): Whether the decision asked on the 3D view.
    """

    describe: list[str]
    reflect: str
    decide: str | None
    label: str | None
    describe_label: str | None
    clear: bool | None
    used_view: bool

    def to_dict(self) -> dict:
        return asdict(self)


def parse_class(text: str, answer_template: str, class_names: list[str]) -> str | None:
    """The class `text` names, matched exactly against `answer_template` (case-sensitive, as the seed's metric)."""
    for class_name in class_names:
        if text.strip() == answer_template.format(class_name=class_name):
            return class_name
    return None


def parse_clarity(text: str) -> bool | None:
    """`True`/`False` for yes/no after lower-casing, stripping and removing ".", as the seed compares; else `None`."""
    return {"yes": True, "no": False}.get(text.strip().lower().replace(".", ""))


class _BatchedChat:
    """
    A batch of conversations that advance one turn at a time through `model.generate`, left-padded.

    The first turn is a plain batched prefill. For a later turn, each conversation is re-rendered with the chat
    template and tokenized; the previous turn's cache is kept up to the first column where some row's new tokens
    differ from what the model saw (a re-tokenized answer can differ from the generated ids), and only the rest is fed,
    right-aligned behind masked padding. Position ids come from the attention mask in `generate`, so masked columns
    shift nothing and a batched turn computes what the same conversation computes alone. The cache is reused only
    when transformers allows cropping it (a `DynamicCache` of full-attention layers) and the new part holds no image
    token (pixels are only encoded on a prefill); otherwise the turn is prefilled from scratch.
    """

    def __init__(
        self, model, processor, max_new_tokens: int, reuse_cache: bool, generation_kwargs: dict | None = None
    ):
        self.model = model
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.reuse_cache = reuse_cache
        self.generation_kwargs = {"do_sample": False, **(generation_kwargs or {})}
        tokenizer = processor.tokenizer
        self.eos_token_id = model.generation_config.eos_token_id
        if self.eos_token_id is None:
            self.eos_token_id = tokenizer.eos_token_id
        self.eos_ids = set(self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id])
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.messages: list[list[dict]] = []
        self.images: list[list] = []
        self.sequences: torch.Tensor | None = None  # [B, T]
        self.attention_mask: torch.Tensor | None = None  # [B, T], 0 on left and post-EOS padding
        self.cache = None
        self.reused_tokens = 0  # cached tokens reused by the last turn, summed over rows (for tests and benchmarks)

    def ask(self, questions: list[str], images: list[list]) -> list[str]:
        """Asks `questions[i]` (with `images[i]` in its `<image>` markers) in conversation `i`; returns the answers."""
        if not self.messages:
            self.messages = [[] for _ in questions]
            self.images = [[] for _ in questions]
        for row, (question, row_images) in enumerate(zip(questions, images, strict=True)):
            self.messages[row].append({"role": "user", "content": question_content(question, row_images)})
            self.images[row].extend(row_images)
        texts = [
            self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            for messages in self.messages
        ]
        inputs = self._inputs_reusing_cache(texts) if self.sequences is not None else None
        if inputs is None:
            self.reused_tokens = 0
            flat_images = [image for row_images in self.images for image in row_images]
            # Left padding whatever the tokenizer's default (a converted checkpoint's may pad on the right).
            inputs = self.processor(
                text=texts, images=flat_images or None, padding=True, padding_side="left", return_tensors="pt"
            )
            inputs = dict(inputs.to(self.model.device))
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        prompt_length = inputs["input_ids"].shape[1]
        output = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
            **self.generation_kwargs,
        )
        generated = output.sequences[:, prompt_length:]  # [B, G]
        is_eos = torch.zeros_like(generated, dtype=torch.bool)
        for eos_id in self.eos_ids:
            is_eos |= generated == eos_id
        # A token is real up to and including the first EOS; what generate appends after it is padding.
        after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0
        generated_mask = (~after_eos).long()
        self.sequences = output.sequences
        self.attention_mask = torch.cat([inputs["attention_mask"], generated_mask], dim=-1)
        self.cache = output.cache
        answer_ids = generated.masked_fill(after_eos | is_eos, self.pad_token_id)
        answers = [text.strip() for text in self.processor.batch_decode(answer_ids, skip_special_tokens=True)]
        for row, answer in enumerate(answers):
            self.messages[row].append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return answers

    def select(self, rows: list[int]) -> "_BatchedChat":
        """A chat with only the conversations `rows` (their cache rows included)."""
        chat = _BatchedChat(self.model, self.processor, self.max_new_tokens, self.reuse_cache, self.generation_kwargs)
        chat.messages = [self.messages[row] for row in rows]
        chat.images = [self.images[row] for row in rows]
        index = torch.tensor(rows, dtype=torch.long, device=self.sequences.device)
        chat.sequences = self.sequences[index]
        chat.attention_mask = self.attention_mask[index]
        if self._cache_is_croppable():
            chat.cache = self.cache
            chat.cache.batch_select_indices(index)
            self.cache = None  # the rows now belong to `chat`
        return chat

    def _cache_is_croppable(self) -> bool:
        return (
            self.reuse_cache
            and isinstance(self.cache, DynamicCache)
            and all(type(layer) is DynamicLayer for layer in self.cache.layers)
        )

    def _inputs_reusing_cache(self, texts: list[str]) -> dict | None:
        if not self._cache_is_croppable():
            return None
        new_ids = [
            self.processor(text=[text], images=row_images or None)["input_ids"][0]
            for text, row_images in zip(texts, self.images, strict=True)
        ]
        new_ids = [ids.tolist() if hasattr(ids, "tolist") else list(ids) for ids in new_ids]
        mask = self.attention_mask.bool()
        # Real tokens of a row need not be contiguous (a later turn leaves masked padding before its new part), so
        # the reusable prefix is counted in real tokens and mapped back to columns.
        boundaries = []
        for row, ids in enumerate(new_ids):
            real_columns = mask[row].nonzero().flatten().tolist()
            seen = self.sequences[row, real_columns].tolist()
            common = 0
            while common < min(len(seen), len(ids)) and seen[common] == ids[common]:
                common += 1
            boundaries.append(real_columns[common] if common < len(real_columns) else self.sequences.shape[1])
        cached = min(self.cache.get_seq_length(), *boundaries)
        kept = mask[:, :cached].sum(dim=-1).tolist()  # real tokens of each row inside the reused columns
        tails = [ids[count:] for ids, count in zip(new_ids, kept, strict=True)]
        image_token_id = self.model.config.image_token_id
        if cached == 0 or any(image_token_id in tail for tail in tails):
            return None
        self.cache.crop(cached - self.cache.get_seq_length())
        width = max(len(tail) for tail in tails)
        device = self.sequences.device
        new_part = torch.full((len(tails), width), self.pad_token_id, dtype=torch.long, device=device)
        new_mask = torch.zeros((len(tails), width), dtype=torch.long, device=device)
        for row, tail in enumerate(tails):
            new_part[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long, device=device)
            new_mask[row, width - len(tail) :] = 1
        self.reused_tokens = int(self.attention_mask[:, :cached].sum())
        return {
            "input_ids": torch.cat([self.sequences[:, :cached], new_part], dim=-1),  # [B, cached + width]
            "attention_mask": torch.cat([self.attention_mask[:, :cached], new_mask], dim=-1),
            "cache": self.cache,
        }


def _image_list(images, name: str, allow_none: bool = False) -> list:
    """`images` as a list, each item checked to be an image (PIL, or an array or tensor the processor takes)."""
    if is_valid_image(images) or isinstance(images, (str, bytes)):
        raise ValueError(f"{name} is one {type(images).__name__}; pass a list of PIL images, e.g. [{name[:-1]}].")
    try:
        images = list(images)
    except TypeError:
        raise ValueError(f"{name} is a {type(images).__name__}; pass a list of PIL images.") from None
    for index, image in enumerate(images):
        if not (is_valid_image(image) or (allow_none and image is None)):
            expected = "a PIL image or None (no view)" if allow_none else "a PIL image"
            raise ValueError(f"{name}[{index}] is {type(image).__name__}, expected {expected}.")
    return images


class OccInternVLForConditionalGeneration(InternVLForConditionalGeneration):
    r"""
    transformers' [`InternVLForConditionalGeneration`] with OCC-MLLM-CoT's recognition ([`recognize`]). The network,
    weights and forward pass are InternVL's, unchanged; saving always writes `auto_map` and this file, so the
    checkpoint also loads with `trust_remote_code=True` where occ-hf is not installed. With `config.freeze_vision`
    (`from_pretrained(path, freeze_vision=True)`) the vision tower is built frozen.
    """

    config_class = OccInternVLConfig
    config: OccInternVLConfig

    # The vision tower is frozen here rather than in the training scripts, so that TRL's own `trl sft|dpo`, which only
    # passes `model_init_kwargs` to `from_pretrained`, freezes it too. Twice, because loading replaces the parameters
    # that `__init__` froze with new ones (requires_grad=True).
    def __init__(self, config: OccInternVLConfig):
        super().__init__(config)
        self._apply_freeze_vision()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """[`~PreTrainedModel.from_pretrained`]; `freeze_vision=True` (a config field) freezes the vision tower."""
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded)._apply_freeze_vision()  # a tuple: output_loading_info
        return loaded

    def _apply_freeze_vision(self):
        """The one rule: `config.freeze_vision` freezes the vision tower (`requires_grad=False`) and nothing else."""
        if self.config.freeze_vision:
            self.model.vision_tower.requires_grad_(False)

    def save_pretrained(self, save_directory, *args, save_original_format: bool = False, **kwargs):
        """
        [`~PreTrainedModel.save_pretrained`], also writing `auto_map` and the modeling files for remote code.

        The weights keep the live model's key names (`model.language_model.*`, `model.vision_tower.*`), which
        `from_pretrained` loads as they are: `save_original_format` defaults to `False` here. transformers' default
        renames keys back to an older layout on save, and `Trainer` resumes by loading a checkpoint's weights file
        into the live model with a non-strict `load_state_dict`, so a renamed checkpoint resumed with the language
        model left at its starting weights and a warning only (transformers issue #43701).
        """
        # Set on every save (not once at import): a class loaded as remote code is re-registered by the Auto class
        # that loaded it, which would otherwise leave the others out of the saved auto_map.
        type(self).register_for_auto_class("AutoModelForImageTextToText")
        type(self.config).register_for_auto_class("AutoConfig")
        module_name = type(self).__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{module_name}.{type(self).__name__}",
        }
        return super().save_pretrained(save_directory, *args, save_original_format=save_original_format, **kwargs)

    @torch.no_grad()
    def recognize(
        self,
        images: list,
        views: list | None = None,
        processor=None,
        policy: str | None = None,
        prompt_style: str | None = None,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
        reuse_cache: bool = True,
        generation_kwargs: dict | None = None,
    ) -> list[OccRecognition]:
        r"""
        Recognises the object in the hand in each image, in three stages (describe, reflect, decide), batched.

        Args:
            images (`list` of `PIL.Image.Image`):
                The RGB images.
            views (`list` of `PIL.Image.Image` or `None`, *optional*):
                The 3D-reconstructed view of each image (`None` entries for missing views). Needed by the decision
                stage for images the model finds unclear, and for every image with `policy="joint"`.
            processor (`OccInternVLProcessor`, *optional*):
                Defaults to `AutoProcessor.from_pretrained(self.name_or_path)`, loaded once.
            policy (`str`, *optional*, defaults to `config.decision_policy`):
                `"staged"` (the seed) or `"joint"` (RGB image and view in one prompt).
            prompt_style (`str`, *optional*, defaults to `config.prompt_style`):
                A key of `config.prompts`.
            max_new_tokens (`int`, *optional*, defaults to `config.max_new_tokens`):
                Tokens generated per stage.
            batch_size (`int`, *optional*):
                Images per batch (a positive integer); all at once by default.
            reuse_cache (`bool`, *optional*, defaults to `True`):
                Reuse each turn's KV cache for the next turn of the conversation.
            generation_kwargs (`dict`, *optional*):
                Passed to `generate` at every stage; greedy (`do_sample=False`, the seed's decoding) unless it says
                otherwise, e.g. `{"do_sample": True, "temperature": 0.7}` for self-consistency runs.

        Returns:
            `list[OccRecognition]`: one per image, in order.
        """
        images = _image_list(images, "images")
        views = _image_list(views, "views", allow_none=True) if views is not None else [None] * len(images)
        if len(views) != len(images):
            raise ValueError(f"Got {len(images)} images but {len(views)} views: pass one view (or None) per image.")
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        policy = policy or self.config.decision_policy
        if policy not in DECISION_POLICIES:
            raise ValueError(f"Unknown policy {policy!r}: use one of {DECISION_POLICIES}.")
        prompt_style = prompt_style or self.config.prompt_style
        if prompt_style not in self.config.prompts:
            raise ValueError(
                f"Unknown prompt style {prompt_style!r}: config.prompts has {sorted(self.config.prompts)}."
            )
        if policy == "joint" and any(view is None for view in views):
            missing = [index for index, view in enumerate(views) if view is None]
            raise ValueError(f"policy='joint' needs a view for every image; images {missing} have none.")
        processor = processor if processor is not None else self._default_processor()
        max_new_tokens = max_new_tokens if max_new_tokens is not None else self.config.max_new_tokens
        batch_size = batch_size if batch_size is not None else max(len(images), 1)
        results = []
        for start in range(0, len(images), batch_size):
            batch = slice(start, start + batch_size)
            run = self._recognize_joint if policy == "joint" else self._recognize_staged
            results += run(
                images[batch], views[batch], processor, prompt_style, max_new_tokens, reuse_cache, generation_kwargs
            )
        return results

    def _default_processor(self):
        if getattr(self, "_occ_processor", None) is None:
            if not self.name_or_path:
                raise ValueError("This model was not loaded from a folder or the Hub: pass `processor=` to recognize.")
            self._occ_processor = AutoProcessor.from_pretrained(self.name_or_path)
        return self._occ_processor

    def _recognize_staged(
        self, images, views, processor, prompt_style, max_new_tokens, reuse_cache, generation_kwargs=None
    ):
        prompts = self.config.prompts[prompt_style]
        class_names = self.config.class_names
        chat = _BatchedChat(self, processor, max_new_tokens, reuse_cache, generation_kwargs)
        describe = [[] for _ in images]
        for turn, question in enumerate(prompts["describe"]):
            turn_images = [[image] * question.count("<image>") if turn == 0 else [] for image in images]
            for row, answer in enumerate(chat.ask([question] * len(images), turn_images)):
                describe[row].append(answer)
        reflect = chat.ask([prompts["reflect_at_inference"]] * len(images), [[] for _ in images])
        clear = [parse_clarity(answer) for answer in reflect]
        describe_label = [
            parse_class(answers[-1], prompts["answer_template"], class_names) if prompts["class_in_describe"] else None
            for answers in describe
        ]
        label, decide, used_view = list(describe_label), [None] * len(images), [False] * len(images)

        # As the seed: only an explicit "no" sends an image to its 3D view; anything else keeps the conversation.
        unclear = [row for row, is_clear in enumerate(clear) if is_clear is False]
        kept = [row for row, is_clear in enumerate(clear) if is_clear is not False]
        if kept and not prompts["class_in_describe"]:
            kept_chat = chat.select(kept)
            answers = kept_chat.ask([prompts["decide_in_conversation"]] * len(kept), [[] for _ in kept])
            for row, answer in zip(kept, answers, strict=True):
                decide[row] = answer
                label[row] = parse_class(answer, prompts["answer_template"], class_names)
        for row in unclear:
            label[row] = None  # a missing view counts as wrong, as in the seed's Decision metric
        with_view = [row for row in unclear if views[row] is not None]
        if with_view:
            view_chat = _BatchedChat(self, processor, max_new_tokens, reuse_cache, generation_kwargs)
            question = prompts["decide"]
            answers = view_chat.ask(
                [question] * len(with_view), [[views[row]] * question.count("<image>") for row in with_view]
            )
            for row, answer in zip(with_view, answers, strict=True):
                decide[row], used_view[row] = answer, True
                label[row] = parse_class(answer, prompts["answer_template"], class_names)
        return [
            OccRecognition(
                describe[row], reflect[row], decide[row], label[row], describe_label[row], clear[row], used_view[row]
            )
            for row in range(len(images))
        ]

    def _recognize_joint(
        self, images, views, processor, prompt_style, max_new_tokens, reuse_cache, generation_kwargs=None
    ):
        prompts = self.config.prompts[prompt_style]
        question = prompts["joint"]
        if question.count("<image>") != 2:
            raise ValueError(f"config.prompts[{prompt_style!r}]['joint'] needs two <image> markers (RGB, view).")
        chat = _BatchedChat(self, processor, max_new_tokens, reuse_cache, generation_kwargs)
        answers = chat.ask(
            [question] * len(images), [[image, view] for image, view in zip(images, views, strict=True)]
        )
        reflect = chat.ask([prompts["reflect_at_inference"]] * len(images), [[] for _ in images])
        results = []
        for answer, clarity in zip(answers, reflect, strict=True):
            label = parse_class(answer, prompts["answer_template"], self.config.class_names)
            results.append(OccRecognition([answer], clarity, None, label, label, parse_clarity(clarity), True))
        return results


__all__ = ["OccInternVLForConditionalGeneration", "OccRecognition"]
