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

from .processing_occ_internvl import question_content


class BatchedChat:
    """
    A batch of conversations that advance one turn at a time through `model.generate`, left-padded.

    The first turn is a plain batched prefill. For a later turn, each conversation is re-rendered with the chat
    template and tokenized; the previous turn's cache is kept up to the first column where some row's new tokens
    differ from what the model saw (a re-tokenized answer can differ from the generated ids), and only the rest is fed,
    right-aligned behind masked padding. Position ids come from the attention mask in `generate`, so masked columns
    shift nothing and a batched turn computes what the same conversation computes alone. The cache is reused only
    when transformers allows cropping it (a `DynamicCache` of full-attention layers) and the new part holds no image
    token (pixels are only encoded on a prefill); otherwise the turn is prefilled from scratch.

    Args:
        model (`OccInternVLForConditionalGeneration`): The model whose `generate` answers.
        processor (`OccInternVLProcessor`): Renders each conversation (its chat template) and encodes its images.
        max_new_tokens (`int`): Tokens generated per turn.
        reuse_cache (`bool`, *optional*, defaults to `True`): Keep the previous turn's KV cache for the next turn.
        generation_kwargs (`dict`, *optional*): Passed to every `generate`; greedy (`do_sample=False`) by default.
    """

    def __init__(
        self, model, processor, max_new_tokens: int, reuse_cache: bool = True, generation_kwargs: dict | None = None
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

    def new(self) -> "BatchedChat":
        """A chat with the same model and settings and no conversation yet."""
        return BatchedChat(
            self.model,
            self.processor,
            max_new_tokens=self.max_new_tokens,
            reuse_cache=self.reuse_cache,
            generation_kwargs=self.generation_kwargs,
        )

    def select(self, rows: list[int]) -> "BatchedChat":
        """A chat with only the conversations `rows` (their cache rows included), which go on from where they are."""
        chat = self.new()
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


__all__ = ["BatchedChat"]
