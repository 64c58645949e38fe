"""`BatchedChat`: a batch of multi-turn conversations run through `generate`, a turn reusing the last one's KV cache.

This is the generation machinery behind `OccInternVLForConditionalGeneration.recognize` (modeling_occ_internvl.py),
which says what to ask; this file says how a batch of conversations is advanced. It is copied next to every saved
checkpoint with the modeling file (a relative import of it, which `save_pretrained` follows), so it imports only
torch, transformers and its siblings.

```python
chat = BatchedChat(model, processor, max_new_tokens=16)
answers = chat.ask(["What's the object in the hand?\n<image>"] * 2, [[rgb_0], [rgb_1]])   # one question per row
answers = chat.ask(["Is it clear to identify the object in the hand?\n"] * 2, [[], []])  # reuses the first turn
row_1 = chat.select([1])     # conversation 1 alone, its cache rows with it
view_chat = chat.new()       # same model and settings, no conversation yet
```
"""

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.image_processing_backends import TorchvisionBackend

from .processing_occ_internvl import question_content


class BatchedChat:
    """
    A batch of conversations that advance one turn at a time through `model.generate`, left-padded.

    Each image is processed once, when its turn asks it (in one image-processor call for the whole batch, on
    `image_device`), and its pixels and its expansion into image tokens are kept with its conversation. A turn renders
    each conversation with the chat template and tokenizes it without touching the images again: the image
    placeholders are expanded with the kept replacement strings, as the processor expands them, so the ids are the
    processor's. Identical conversations (the same questions and answers) are rendered and tokenized once.

    The first turn is a plain batched prefill. For a later turn the previous turn's cache is kept up to the first
    column where some row's new tokens differ from what the model saw (a re-tokenized answer can differ from the
    generated ids), and only the rest is fed, right-aligned behind masked padding. Position ids come from the
    attention mask in `generate`, so masked columns shift nothing and a batched turn computes what the same
    conversation computes alone. The cache is reused only when transformers allows cropping it (a `DynamicCache` of
    full-attention layers) and the new part holds no image token (pixels are only encoded on a prefill); otherwise
    the turn is prefilled from scratch with the kept pixels.

    Args:
        model (`OccInternVLForConditionalGeneration`): The model whose `generate` answers.
        processor (`OccInternVLProcessor`): Renders each conversation (its chat template) and encodes its images.
        max_new_tokens (`int`): Tokens generated per turn.
        reuse_cache (`bool`, *optional*, defaults to `True`): Keep the previous turn's KV cache for the next turn.
        generation_kwargs (`dict`, *optional*): Passed to every `generate`; greedy (`do_sample=False`) by default.
        image_device (`str` or `torch.device`, *optional*, defaults to the model's device):
            Where the image processor resizes and normalises (a torchvision-backed image processor only; one with
            another backend processes on the CPU). On a GPU this takes the per-image work off the CPU.
    """

    def __init__(
        self,
        model,
        processor,
        max_new_tokens: int,
        reuse_cache: bool = True,
        generation_kwargs: dict | None = None,
        image_device=None,
    ):
        self.model = model
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.reuse_cache = reuse_cache
        self.generation_kwargs = {"do_sample": False, **(generation_kwargs or {})}
        self.image_device = model.device if image_device is None else torch.device(image_device)
        tokenizer = processor.tokenizer
        self.eos_token_id = model.generation_config.eos_token_id
        if self.eos_token_id is None:
            self.eos_token_id = tokenizer.eos_token_id
        self.eos_ids = set(self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id])
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.messages: list[list[dict]] = []
        self.pixels: list[list[torch.Tensor]] = []  # per row, per image: [tiles, 3, H, W] on the model's device
        self.replacements: list[list[str]] = []  # per row, per image: the text its placeholder expands to
        self.sequences: torch.Tensor | None = None  # [B, T], on the CPU (what the model saw and generated)
        self.attention_mask: torch.Tensor | None = None  # [B, T], on the CPU; 0 on left and post-EOS padding
        self.cache = None
        self.reused_tokens = 0  # cached tokens reused by the last turn, summed over rows (for tests and benchmarks)

    def ask(self, questions: list[str], images: list[list]) -> list[str]:
        """Asks `questions[i]` (with `images[i]` in its `<image>` markers) in conversation `i`; returns the answers."""
        if not self.messages:
            self.messages = [[] for _ in questions]
            self.pixels = [[] for _ in questions]
            self.replacements = [[] for _ in questions]
        for row, (question, row_images) in enumerate(zip(questions, images, strict=True)):
            self.messages[row].append({"role": "user", "content": question_content(question, row_images)})
        self._encode_images(images)
        new_ids = self._tokenize()
        inputs = self._inputs_reusing_cache(new_ids) if self.sequences is not None else None
        if inputs is None:
            inputs = self._prefill_inputs(new_ids)
        prompt_length = inputs["input_ids"].shape[1]
        output = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
            **self.generation_kwargs,
        )
        sequences = output.sequences.cpu()  # one transfer; the bookkeeping below is on the CPU
        generated = sequences[:, prompt_length:]  # [B, G]
        is_eos = torch.zeros_like(generated, dtype=torch.bool)
        for eos_id in self.eos_ids:
            is_eos |= generated == eos_id
        # A token is real up to and including the first EOS; what generate appends after it is padding.
        after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0
        self.sequences = sequences
        self.attention_mask = torch.cat([inputs["attention_mask"].cpu(), (~after_eos).long()], dim=-1)
        self.cache = output.cache
        answer_ids = generated.masked_fill(after_eos | is_eos, self.pad_token_id)
        # Lists, not a tensor: the tokenizer converts a tensor element by element in Python.
        decoded = self.processor.batch_decode(answer_ids.tolist(), skip_special_tokens=True)
        answers = [text.strip() for text in decoded]
        for row, answer in enumerate(answers):
            self.messages[row].append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return answers

    def new(self) -> "BatchedChat":
        """A chat with the same model and settings and no conversation yet."""
        return BatchedChat(
            self.model,
            self.processor,
            max_new_tokens=self.max_new_tokens,
            reuse_cache=self.reuse_cache,
            generation_kwargs=self.generation_kwargs,
            image_device=self.image_device,
        )

    def select(self, rows: list[int]) -> "BatchedChat":
        """A chat with only the conversations `rows` (their cache rows included), which go on from where they are."""
        chat = self.new()
        chat.messages = [self.messages[row] for row in rows]
        chat.pixels = [self.pixels[row] for row in rows]
        chat.replacements = [self.replacements[row] for row in rows]
        index = torch.tensor(rows, dtype=torch.long)
        chat.sequences = self.sequences[index]
        chat.attention_mask = self.attention_mask[index]
        if self._cache_is_croppable():
            chat.cache = self.cache
            chat.cache.batch_select_indices(index.to(self.model.device))
            self.cache = None  # the rows now belong to `chat`
        return chat

    def _encode_images(self, images: list[list]) -> None:
        """Processes this turn's images of every row in one call; keeps each image's pixels and token expansion."""
        flat = [image for row_images in images for image in row_images]
        if not flat:
            return
        image_processor = self.processor.image_processor
        kwargs = {"return_tensors": "pt"}
        if isinstance(image_processor, TorchvisionBackend):  # the PIL backend has no device to work on
            kwargs["device"] = self.image_device
        processed = image_processor(flat, **kwargs)
        num_patches = processed["num_patches"]
        num_patches = num_patches.tolist() if hasattr(num_patches, "tolist") else list(num_patches)
        pixel_values = processed["pixel_values"].to(self.model.device, self.model.dtype)
        chunks = iter(pixel_values.split(num_patches))
        index = 0
        for row, row_images in enumerate(images):
            for _ in row_images:
                self.pixels[row].append(next(chunks))
                self.replacements[row].append(self.processor.replace_image_token(processed, image_idx=index))
                index += 1

    def _tokenize(self) -> list[list[int]]:
        """Each conversation's ids with a generation prompt: chat template, image placeholders expanded, tokenized."""
        ids_of: dict = {}
        rows = []
        for messages, replacements in zip(self.messages, self.replacements, strict=True):
            # The images themselves do not change the text: a conversation is its parts' texts and its expansions.
            key = (
                tuple(
                    (message["role"], tuple((part["type"], part.get("text")) for part in message["content"]))
                    for message in messages
                ),
                tuple(replacements),
            )
            if key not in ids_of:
                text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                if replacements:
                    text = self.processor.get_text_with_replacements([text], images_replacements=replacements)[0][0]
                ids_of[key] = self.processor.tokenizer(text)["input_ids"]
            rows.append(ids_of[key])
        return rows

    def _prefill_inputs(self, new_ids: list[list[int]]) -> dict:
        """The whole conversations, left-padded, with every kept image's pixels."""
        self.reused_tokens = 0
        input_ids, attention_mask = _left_padded(new_ids, self.pad_token_id)
        device = self.model.device
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        pixels = [chunk for row_pixels in self.pixels for chunk in row_pixels]
        if pixels:
            inputs["pixel_values"] = torch.cat(pixels)
        return inputs

    def _cache_is_croppable(self) -> bool:
        return (
            self.reuse_cache
            and isinstance(self.cache, DynamicCache)
            and all(type(layer) is DynamicLayer for layer in self.cache.layers)
        )

    def _inputs_reusing_cache(self, new_ids: list[list[int]]) -> dict | None:
        if not self._cache_is_croppable():
            return None
        mask = self.attention_mask.bool()
        # Real tokens of a row need not be contiguous (a later turn leaves masked padding before its new part), so
        # the reusable prefix is counted in real tokens and mapped back to columns.
        boundaries = []
        for row, ids in enumerate(new_ids):
            real_columns = mask[row].nonzero().flatten()
            seen = self.sequences[row, real_columns]
            length = min(len(seen), len(ids))
            differs = (seen[:length] != torch.tensor(ids[:length], dtype=torch.long)).nonzero()
            common = int(differs[0]) if len(differs) else length
            boundaries.append(int(real_columns[common]) if common < len(real_columns) else self.sequences.shape[1])
        cached = min(self.cache.get_seq_length(), *boundaries)
        kept = mask[:, :cached].sum(dim=-1).tolist()  # real tokens of each row inside the reused columns
        tails = [ids[count:] for ids, count in zip(new_ids, kept, strict=True)]
        image_token_id = self.model.config.image_token_id
        if cached == 0 or any(image_token_id in tail for tail in tails):
            return None
        self.cache.crop(cached - self.cache.get_seq_length())
        new_part, new_mask = _left_padded(tails, self.pad_token_id)
        self.reused_tokens = int(self.attention_mask[:, :cached].sum())
        device = self.model.device
        return {
            "input_ids": torch.cat([self.sequences[:, :cached], new_part], dim=-1).to(device),  # [B, cached + new]
            "attention_mask": torch.cat([self.attention_mask[:, :cached], new_mask], dim=-1).to(device),
            "cache": self.cache,
        }


def _left_padded(rows: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`rows` as one `[B, longest]` tensor of ids, padded on the left with `pad_token_id`, and its attention mask."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, ids in enumerate(rows):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


__all__ = ["BatchedChat"]
