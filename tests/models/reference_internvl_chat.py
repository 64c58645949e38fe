"""A compact, independent forward pass of OpenGVLab's original `InternVLChatModel`, computed from its original weights.

The conversion tests compare the converted native model against this. It is written from the published original
code (OpenGVLab/InternVL `internvl_chat/internvl/model/`: `modeling_intern_vit.py`, `modeling_internvl_chat.py`,
`internlm2/modeling_internlm2.py`, `phi3/modeling_phi3.py`) and shares nothing with the converter: it reads the
original key names and config fields, and splits the fused projections the way the original forward passes do.

```python
logits = internvl_chat_logits(state_dict, chat_config, pixel_values, input_ids, img_context_token_id=7)
```

Scope: eager attention, one unpadded causal sequence per row (no cache), rotary scaling for sequences shorter than
the original context (InternLM2's dynamic NTK only changes longer ones).
"""

import math

import torch
import torch.nn.functional as F


__all__ = ["internvl_chat_logits", "vision_features"]


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _linear(weights: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, weights[f"{name}.weight"], weights.get(f"{name}.bias"))


def _intern_vit(weights: dict, vision: dict, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """InternVisionModel: every hidden state (embeddings, then each layer), as `output_hidden_states` returns them."""
    hidden, heads, eps = vision["hidden_size"], vision["num_attention_heads"], vision.get("layer_norm_eps", 1e-6)
    norm_type = vision.get("norm_type", "rms_norm")
    patch = F.conv2d(pixel_values, weights["embeddings.patch_embedding.weight"],
                     weights["embeddings.patch_embedding.bias"], stride=vision["patch_size"])  # fmt: skip
    batch, _, grid_h, grid_w = patch.shape
    x = torch.cat([weights["embeddings.class_embedding"].expand(batch, 1, -1), patch.flatten(2).transpose(1, 2)], 1)
    position = weights["embeddings.position_embedding"]
    side = vision["image_size"] // vision["patch_size"]
    grid = position[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    # The original always interpolates (bicubic) to the feature grid, even at the trained size.
    grid = F.interpolate(grid.float(), size=(grid_h, grid_w), mode="bicubic", align_corners=False)
    x = x + torch.cat([position[:, :1], grid.reshape(1, hidden, -1).permute(0, 2, 1)], 1)

    def norm(name, h):
        if norm_type == "layer_norm":
            return F.layer_norm(h, (hidden,), weights[f"{name}.weight"], weights[f"{name}.bias"], eps)
        return _rms_norm(h, weights[f"{name}.weight"], eps)

    states = [x]
    for i in range(vision["num_hidden_layers"]):
        p = f"encoder.layers.{i}"
        h = norm(f"{p}.norm1", x)
        qkv = _linear(weights, f"{p}.attn.qkv", h).reshape(batch, -1, 3, heads, hidden // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, heads, N, d]
        if vision.get("qk_normalization", True):
            q = _rms_norm(q.transpose(1, 2).flatten(-2), weights[f"{p}.attn.q_norm.weight"], eps)
            k = _rms_norm(k.transpose(1, 2).flatten(-2), weights[f"{p}.attn.k_norm.weight"], eps)
            q = q.view(batch, -1, heads, hidden // heads).transpose(1, 2)
            k = k.view(batch, -1, heads, hidden // heads).transpose(1, 2)
        attention = ((q * (hidden // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        out = (attention @ v).transpose(1, 2).reshape(batch, -1, hidden)
        x = x + _linear(weights, f"{p}.attn.proj", out) * weights[f"{p}.ls1"]
        h = F.gelu(_linear(weights, f"{p}.mlp.fc1", norm(f"{p}.norm2", x)))
        x = x + _linear(weights, f"{p}.mlp.fc2", h) * weights[f"{p}.ls2"]
        states.append(x)
    return states


def _pixel_shuffle_v2(x: torch.Tensor, scale: float) -> torch.Tensor:
    n, w, h, c = x.shape
    x = x.reshape(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3)
    x = x.reshape(n, int(h * scale), int(w * scale), int(c / scale**2))
    return x.permute(0, 2, 1, 3)


def vision_features(state_dict: dict, chat_config: dict, pixel_values: torch.Tensor) -> torch.Tensor:
    """`InternVLChatModel.extract_feature`: ViT layer `select_layer`, drop CLS, pixel shuffle, `mlp1`. `[B, T, D]`."""
    vit = {k.removeprefix("vision_model."): v for k, v in state_dict.items() if k.startswith("vision_model.")}
    states = _intern_vit(vit, chat_config["vision_config"], pixel_values)
    x = states[chat_config.get("select_layer", -1)][:, 1:]
    side = int(x.shape[1] ** 0.5)
    x = _pixel_shuffle_v2(x.reshape(x.shape[0], side, side, -1), chat_config["downsample_ratio"])
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    x = F.layer_norm(x, x.shape[-1:], state_dict["mlp1.0.weight"], state_dict["mlp1.0.bias"], 1e-5)
    x = F.gelu(F.linear(x, state_dict["mlp1.1.weight"], state_dict["mlp1.1.bias"]))
    return F.linear(x, state_dict["mlp1.3.weight"], state_dict["mlp1.3.bias"])


def _rope(llm: dict, head_dim: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin `[T, head_dim]` of the original rotary classes (plain, InternLM2's, Phi-3's `su`)."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    base = llm.get("rope_theta", 10000.0)
    scaling, factor = llm.get("rope_scaling"), 1.0
    inv_freq = 1.0 / base**exponent
    if scaling is not None and scaling["type"] == "su":
        original = llm["original_max_position_embeddings"]
        ext = scaling["long_factor"] if length > original else scaling["short_factor"]
        inv_freq = 1.0 / (torch.tensor(ext, dtype=torch.float32) * base**exponent)
        scale = llm["max_position_embeddings"] / original
        factor = math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1 else 1.0
    elif scaling is not None and scaling["type"] == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif scaling is not None and scaling["type"] == "dynamic" and length > llm["max_position_embeddings"]:
        raise NotImplementedError("the reference covers sequences within max_position_embeddings")
    freqs = torch.outer(torch.arange(length).float(), inv_freq)
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos() * factor, emb.sin() * factor


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def _language_model(weights: dict, llm: dict, inputs_embeds: torch.Tensor) -> torch.Tensor:
    """The decoder of Qwen2, Llama, InternLM2 and Phi-3 as their original code runs it; returns logits."""
    arch = llm["architectures"][0]
    heads, hidden = llm["num_attention_heads"], llm["hidden_size"]
    kv_heads = llm.get("num_key_value_heads") or heads
    d, groups = hidden // heads, heads // kv_heads
    eps = llm.get("rms_norm_eps", 1e-6)
    batch, length, _ = inputs_embeds.shape
    cos, sin = _rope(llm, d, length)
    causal = torch.full((length, length), float("-inf")).triu(1)
    internlm2 = arch == "InternLM2ForCausalLM"
    x = inputs_embeds
    for i in range(llm["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = _rms_norm(x, weights[f"{p}.attention_norm.weight" if internlm2 else f"{p}.input_layernorm.weight"], eps)
        if internlm2:
            # wqkv rows: per kv head, its `groups` query heads, then its key, then its value (InternLM2Attention).
            qkv = _linear(weights, f"{p}.attention.wqkv", h).view(batch, length, kv_heads, groups + 2, d)
            q = qkv[..., :groups, :].reshape(batch, length, heads, d)
            k, v = qkv[..., -2, :], qkv[..., -1, :]
        elif arch == "Phi3ForCausalLM":
            qkv = _linear(weights, f"{p}.self_attn.qkv_proj", h)
            q, k, v = qkv.split([heads * d, kv_heads * d, kv_heads * d], -1)
            q, k, v = q.view(batch, length, heads, d), k.view(batch, length, kv_heads, d), v.view(batch, length, -1, d)
        else:
            q = _linear(weights, f"{p}.self_attn.q_proj", h).view(batch, length, heads, d)
            k = _linear(weights, f"{p}.self_attn.k_proj", h).view(batch, length, kv_heads, d)
            v = _linear(weights, f"{p}.self_attn.v_proj", h).view(batch, length, kv_heads, d)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, T, d]
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        attention = (q @ k.transpose(-2, -1) / math.sqrt(d) + causal).softmax(-1)
        out = (attention @ v).transpose(1, 2).reshape(batch, length, heads * d)
        x = x + _linear(weights, f"{p}.attention.wo" if internlm2 else f"{p}.self_attn.o_proj", out)
        h = _rms_norm(x, weights[f"{p}.ffn_norm.weight" if internlm2 else f"{p}.post_attention_layernorm.weight"], eps)
        if internlm2:
            up = F.silu(_linear(weights, f"{p}.feed_forward.w1", h)) * _linear(weights, f"{p}.feed_forward.w3", h)
            mlp = _linear(weights, f"{p}.feed_forward.w2", up)
        elif arch == "Phi3ForCausalLM":
            gate, up = _linear(weights, f"{p}.mlp.gate_up_proj", h).chunk(2, -1)
            mlp = _linear(weights, f"{p}.mlp.down_proj", up * F.silu(gate))
        else:
            up = F.silu(_linear(weights, f"{p}.mlp.gate_proj", h)) * _linear(weights, f"{p}.mlp.up_proj", h)
            mlp = _linear(weights, f"{p}.mlp.down_proj", up)
        x = x + mlp
    x = _rms_norm(x, weights["model.norm.weight"], eps)
    return F.linear(x, weights["output.weight" if internlm2 else "lm_head.weight"])


def internvl_chat_logits(
    state_dict: dict, chat_config: dict, pixel_values: torch.Tensor, input_ids: torch.Tensor, img_context_token_id: int
) -> torch.Tensor:
    """`InternVLChatModel.forward`'s logits: image features replace the `<IMG_CONTEXT>` embeddings, in order."""
    llm = chat_config["llm_config"]
    weights = {k.removeprefix("language_model."): v for k, v in state_dict.items() if k.startswith("language_model.")}
    embed = weights[
        "model.tok_embeddings.weight" if "model.tok_embeddings.weight" in weights else "model.embed_tokens.weight"
    ]
    inputs_embeds = embed[input_ids].clone()
    features = vision_features(state_dict, chat_config, pixel_values)
    selected = input_ids == img_context_token_id
    inputs_embeds[selected] = features.reshape(-1, features.shape[-1])
    return _language_model(weights, llm, inputs_embeds)
