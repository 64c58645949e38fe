"""Renames an original `InternVLChatModel` state dict into the parameter names of `InternVLForConditionalGeneration`.

Part of the InternVL checkpoint converter, whose entry point is [`convert_checkpoint`] in `convert_occ_internvl.py`.

```python
state_dict = convert_internvl_chat_state_dict(load_checkpoint_state_dict(folder), chat_config)
```

How the original layout maps (checked against OpenGVLab/InternVL `internvl_chat/internvl/model/`:
`internvl_chat/modeling_intern_vit.py`, `internvl_chat/modeling_internvl_chat.py`, `internlm2/modeling_internlm2.py`,
`phi3/`; and transformers' `models/internvl/convert_internvl_weights_to_hf.py` and `modeling_internvl.py`):

- InternViT `vision_model.*` -> `model.vision_tower.*`: `class_embedding` -> `cls_token`, `patch_embedding` ->
  `patch_embeddings.projection`, `position_embedding` -> `position_embeddings`, `layers.{i}` -> `layer.{i}`,
  `ls1`/`ls2` (layer scale) -> `lambda_1`/`lambda_2`, `norm1`/`norm2` -> `layernorm_before`/`layernorm_after`,
  `attn.proj` -> `attention.projection_layer`, `attn.q_norm`/`k_norm` kept, and the fused `attn.qkv` (rows ordered
  q, k, v, since InternViT reshapes it to `[B, N, 3, heads, head_dim]`) split into `q_proj`/`k_proj`/`v_proj`.
- `mlp1.{0,1,3}` (LayerNorm, Linear, GELU, Linear) -> `model.multi_modal_projector.{layer_norm,linear_1,linear_2}`.
- Qwen2 / Llama / Phi-3 language models are native in transformers: `language_model.model.*` ->
  `model.language_model.*` and `language_model.lm_head` -> `lm_head` (Phi-3 keeps its fused `qkv_proj` and
  `gate_up_proj`, which transformers' Phi-3 has too).
- InternLM2 / InternLM2.5 become Llama: `tok_embeddings` -> `embed_tokens`, `output` -> `lm_head`,
  `attention_norm`/`ffn_norm` -> `input_layernorm`/`post_attention_layernorm`, `attention.wo` -> `self_attn.o_proj`,
  `feed_forward.w1/w3/w2` -> `mlp.gate_proj/up_proj/down_proj`, and the fused `attention.wqkv`, whose rows are
  grouped by key-value head (for each kv head: its `heads // kv_heads` query heads, then its key, then its value),
  split into `q_proj`/`k_proj`/`v_proj` ([`split_internlm2_wqkv`]).

Only the split projections are copied; every other tensor is passed on as it is.
"""

import re

import torch

from .convert_config import language_model_architecture
from .convert_source import CheckpointConversionError


__all__ = ["convert_internvl_chat_state_dict", "split_internlm2_wqkv"]

_VISION_LAYER_RENAMES = {
    "ls1": "lambda_1",
    "ls2": "lambda_2",
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "attn.proj.weight": "attention.projection_layer.weight",
    "attn.proj.bias": "attention.projection_layer.bias",
    "attn.q_norm.weight": "attention.q_norm.weight",
    "attn.k_norm.weight": "attention.k_norm.weight",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
}
_VISION_EMBEDDING_RENAMES = {
    "embeddings.class_embedding": "embeddings.cls_token",
    "embeddings.position_embedding": "embeddings.position_embeddings",
    "embeddings.patch_embedding.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embedding.bias": "embeddings.patch_embeddings.projection.bias",
}
_PROJECTOR_RENAMES = {"mlp1.0": "layer_norm", "mlp1.1": "linear_1", "mlp1.3": "linear_2"}
_INTERNLM2_LAYER_RENAMES = {
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_LAYER_KEY = re.compile(r"^(?P<prefix>.*?layers)\.(?P<index>\d+)\.(?P<rest>.+)$")


def convert_internvl_chat_state_dict(
    state_dict: dict[str, torch.Tensor], chat_config: dict, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """
    Renames (and splits the fused projections of) an original `InternVLChatModel` state dict into the parameter names
    of transformers' `InternVLForConditionalGeneration`.

    Args:
        state_dict (`dict[str, torch.Tensor]`): The original weights (`vision_model.*`, `mlp1.*`, `language_model.*`).
        chat_config (`dict`): The original config (for the head counts of the fused projections).
        source (`str`, *optional*, defaults to `"checkpoint"`): Name of the source, for error messages.

    Returns:
        `dict[str, torch.Tensor]`: The converted weights; every source tensor is used exactly once.

    Raises:
        [`CheckpointConversionError`]: A key has no known place in the native model (nothing is dropped silently).
    """
    architecture = language_model_architecture(chat_config["llm_config"], source)
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        if key.startswith("vision_model."):
            target = _convert_vision_key(key.removeprefix("vision_model."), tensor)
        elif key.startswith("mlp1."):
            module, _, name = key.rpartition(".")
            target = (
                {f"model.multi_modal_projector.{_PROJECTOR_RENAMES[module]}.{name}": tensor}
                if (module in _PROJECTOR_RENAMES)
                else None
            )
        elif key.startswith("language_model."):
            rest = key.removeprefix("language_model.")
            if architecture == "InternLM2ForCausalLM":
                target = _convert_internlm2_key(rest, tensor, chat_config["llm_config"])
            elif rest == "lm_head.weight":
                target = {"lm_head.weight": tensor}
            elif rest.startswith("model."):
                target = {"model.language_model." + rest.removeprefix("model."): tensor}
            else:
                target = None
        else:
            target = None
        if target is None:
            unknown.append(key)
        else:
            converted.update(target)
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise CheckpointConversionError(
            f"{source}: {len(unknown)} weight(s) have no place in the native InternVL model: {shown}. Is this an "
            "InternVLChatModel checkpoint with merged weights?"
        )
    return converted


def _convert_vision_key(rest: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
    prefix = "model.vision_tower."
    if rest in _VISION_EMBEDDING_RENAMES:
        return {prefix + _VISION_EMBEDDING_RENAMES[rest]: tensor}
    match = _LAYER_KEY.match(rest)
    if match is None or match["prefix"] != "encoder.layers":
        return None
    layer = f"{prefix}encoder.layer.{match['index']}."
    name = match["rest"]
    if name in ("attn.qkv.weight", "attn.qkv.bias"):
        query, key, value = tensor.chunk(3, dim=0)  # rows ordered [q | k | v], each hidden_size long
        kind = name.rpartition(".")[2]
        return {
            f"{layer}attention.{proj}.{kind}": part.clone()  # own storage: safetensors refuses partial views
            for proj, part in (("q_proj", query), ("k_proj", key), ("v_proj", value))
        }
    if name in _VISION_LAYER_RENAMES:
        return {layer + _VISION_LAYER_RENAMES[name]: tensor}
    return None


def _convert_internlm2_key(rest: str, tensor: torch.Tensor, llm: dict) -> dict[str, torch.Tensor] | None:
    prefix = "model.language_model."
    if rest == "output.weight":
        return {"lm_head.weight": tensor}
    if rest == "model.tok_embeddings.weight":
        return {prefix + "embed_tokens.weight": tensor}
    if rest == "model.norm.weight":
        return {prefix + "norm.weight": tensor}
    match = _LAYER_KEY.match(rest)
    if match is None or match["prefix"] != "model.layers":
        return None
    layer = f"{prefix}layers.{match['index']}."
    module, _, kind = match["rest"].rpartition(".")
    if module == "attention.wqkv":
        query, key, value = split_internlm2_wqkv(tensor, llm)
        return {
            f"{layer}self_attn.q_proj.{kind}": query,
            f"{layer}self_attn.k_proj.{kind}": key,
            f"{layer}self_attn.v_proj.{kind}": value,
        }
    if module in _INTERNLM2_LAYER_RENAMES:
        return {f"{layer}{_INTERNLM2_LAYER_RENAMES[module]}.{kind}": tensor}
    return None


def split_internlm2_wqkv(wqkv: torch.Tensor, llm: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Splits InternLM2's fused `wqkv` weight (or bias) into query, key and value.

    Its rows come in `num_key_value_heads` groups, one per kv head; a group holds that head's
    `num_attention_heads // num_key_value_heads` query heads, then its key head, then its value head, each `head_dim`
    rows (InternLM2Attention.forward: `rearrange(qkv, "b q (h gs d) -> b q h gs d", gs=2 + groups)`).

    Args:
        wqkv (`torch.Tensor`): `[(heads + 2 * kv_heads) * head_dim, hidden]` weight or `[(heads + 2 * kv_heads) *
            head_dim]` bias.
        llm (`dict`): The original `llm_config`.

    Returns:
        `tuple[torch.Tensor, torch.Tensor, torch.Tensor]`: q `[heads * head_dim, ...]`, k and v `[kv_heads * head_dim,
        ...]`, query heads in the order the original attention uses them (kv head major).
    """
    num_heads = llm["num_attention_heads"]
    num_kv_heads = llm.get("num_key_value_heads") or num_heads
    head_dim = llm["hidden_size"] // num_heads
    groups = num_heads // num_kv_heads
    trailing = wqkv.shape[1:]
    grouped = wqkv.reshape(num_kv_heads, groups + 2, head_dim, *trailing)  # [kv, groups + 2, d, (hidden)]
    query = grouped[:, :groups].reshape(num_heads * head_dim, *trailing)
    key = grouped[:, groups].reshape(num_kv_heads * head_dim, *trailing)
    value = grouped[:, groups + 1].reshape(num_kv_heads * head_dim, *trailing)
    return query.clone(), key.clone(), value.clone()
