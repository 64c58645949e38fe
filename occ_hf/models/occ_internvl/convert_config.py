"""Maps an original `InternVLChatConfig` (OpenGVLab's `config.json`, `model_type` `internvl_chat`) to a native one.

Part of the InternVL checkpoint converter, whose entry point is [`convert_checkpoint`] in `convert_occ_internvl.py`.
InternViT's `vision_config` becomes an `InternVLVisionConfig`; a Qwen2, Llama or Phi-3 `llm_config` becomes
transformers' own config of that architecture (Phi-3's `su` rope scaling is transformers' `longrope`), an InternLM2 /
InternLM2.5 one a `LlamaConfig`; the top-level fields (`force_image_size`, `downsample_ratio`, `select_layer`) give
the image sequence length and the feature layer.

```python
config = convert_internvl_chat_config(chat_config, image_token_id=92546)   # chat_config: the parsed config.json
```

Things that cannot be represented natively are refused with an error naming the field: pixel shuffle `ps_version`
`v1` (a transposed shuffle), InternViT q/k norms with an epsilon other than transformers' fixed 1e-6, Phi-3 `yarn`
rope scaling, LoRA-wrapped (unmerged) weights. Rotary scaling matches the original for every sequence shorter than
the original context; InternLM2.5's `dynamic` NTK uses the same formula beyond it, but the original keeps the grown
table cached while transformers recomputes it per call.
"""

from transformers import InternVLConfig, InternVLVisionConfig, LlamaConfig, Phi3Config, Qwen2Config

from .convert_source import CheckpointConversionError


__all__ = ["check_chat_config", "convert_internvl_chat_config", "language_model_architecture"]

# Config keys of the original sub-configs that describe the remote-code runtime, not the network.
_RUNTIME_KEYS = {
    "_name_or_path", "_attn_implementation", "_attn_implementation_autoset", "attn_implementation", "auto_map",
    "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "use_bfloat16", "use_flash_attn",
    "tie_word_embeddings",
}  # fmt: skip
# Generic attributes that transformers 4.x wrote into every config.json (generation defaults, task heads, TF flags);
# InternVL2's llm_config carries all of them. They say nothing about the network, and transformers 5 configs would
# keep them as stray attributes, so they are left out.
_LEGACY_GENERIC_KEYS = {
    "add_cross_attention", "bad_words_ids", "begin_suppress_tokens", "chunk_size_feed_forward",
    "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty", "do_sample", "early_stopping",
    "encoder_no_repeat_ngram_size", "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id",
    "forced_eos_token_id", "id2label", "is_decoder", "is_encoder_decoder", "label2id", "length_penalty", "max_length",
    "min_length", "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_return_sequences", "output_attentions",
    "output_hidden_states", "output_scores", "prefix", "problem_type", "pruned_heads", "remove_invalid_values",
    "repetition_penalty", "return_dict", "return_dict_in_generate", "sep_token_id", "suppress_tokens",
    "task_specific_params", "temperature", "tf_legacy_loss", "tie_encoder_decoder", "tokenizer_class", "top_k",
    "top_p", "torchscript", "typical_p",
}  # fmt: skip


def convert_internvl_chat_config(
    chat_config: dict, image_token_id: int, config_class: type = InternVLConfig, source: str = "config.json"
):
    """
    Maps an original `InternVLChatConfig` (as read from its `config.json`) to a native InternVL config.

    Args:
        chat_config (`dict`): The original config, with `vision_config` and `llm_config`.
        image_token_id (`int`): Id of the `<IMG_CONTEXT>` token in the tokenizer.
        config_class (`type`, *optional*, defaults to `InternVLConfig`): The config class to build (a subclass works).
        source (`str`, *optional*, defaults to `"config.json"`): Name of the config, for error messages.

    Returns:
        An instance of `config_class`.
    """
    if chat_config.get("ps_version", "v1") != "v2":
        raise CheckpointConversionError(
            f"{source}: ps_version {chat_config.get('ps_version', 'v1')!r} (InternVL 1.x's transposed pixel shuffle) "
            "has no native equivalent; only ps_version 'v2' checkpoints (InternVL 1.5 and later) can be converted."
        )
    if chat_config.get("use_backbone_lora") or chat_config.get("use_llm_lora"):
        raise CheckpointConversionError(
            f"{source}: the checkpoint has unmerged LoRA adapters (use_backbone_lora/use_llm_lora); merge them "
            "into the weights with InternVL's tools first."
        )
    vision = _vision_config(chat_config["vision_config"], source)
    text = _text_config(chat_config["llm_config"], source)
    image_size = chat_config.get("force_image_size") or chat_config["vision_config"]["image_size"]
    patch_size = chat_config["vision_config"]["patch_size"]
    downsample_ratio = chat_config.get("downsample_ratio", 0.5)
    return config_class(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=int((image_size // patch_size) ** 2 * downsample_ratio**2),
        downsample_ratio=downsample_ratio,
        projector_hidden_act="gelu",  # mlp1's nn.GELU() is the exact (erf) GELU
        vision_feature_layer=chat_config.get("select_layer", -1),
        vision_feature_select_strategy="default",  # extract_feature drops the CLS token
        tie_word_embeddings=False,  # InternVLChatConfig forces untied heads
        architectures=[config_class.__name__.replace("Config", "ForConditionalGeneration")],
    )


def _vision_config(vision: dict, source: str) -> InternVLVisionConfig:
    qk_norm = vision.get("qk_normalization", True)
    eps = vision.get("layer_norm_eps", 1e-6)
    if qk_norm and eps != 1e-6:
        raise CheckpointConversionError(
            f"{source}: vision_config has qk_normalization with layer_norm_eps={eps}, but transformers' InternVL "
            "vision q/k norms use a fixed epsilon of 1e-6, so the outputs would differ."
        )
    return InternVLVisionConfig(
        hidden_size=vision["hidden_size"],
        intermediate_size=vision["intermediate_size"],
        num_hidden_layers=vision["num_hidden_layers"],
        num_attention_heads=vision["num_attention_heads"],
        num_channels=vision.get("num_channels", 3),
        image_size=vision["image_size"],  # the size the position embeddings were trained at
        patch_size=vision["patch_size"],
        hidden_act=vision.get("hidden_act", "gelu"),
        norm_type=vision.get("norm_type", "rms_norm"),
        layer_norm_eps=eps,
        use_qk_norm=qk_norm,
        attention_bias=vision.get("qkv_bias", False),
        attention_dropout=vision.get("attention_dropout", 0.0),
        projection_dropout=vision.get("dropout", 0.0),
        hidden_dropout_prob=vision.get("dropout", 0.0),
        initializer_range=vision.get("initializer_range", 0.02),
        layer_scale_init_value=vision.get("initializer_factor", 0.1),
        use_absolute_position_embeddings=True,
        use_mean_pooling=True,  # no final norm: InternViT has none
    )


def language_model_architecture(llm: dict, source: str) -> str:
    """
    The architecture of an original `llm_config` (e.g. `InternLM2ForCausalLM`), refused unless it can be converted.

    Args:
        llm (`dict`): The original `llm_config`.
        source (`str`): Name of the config, for error messages.

    Returns:
        `str`: The first of its `architectures`, one of Qwen2, Llama, Phi-3 and InternLM2 `ForCausalLM`.
    """
    architectures = llm.get("architectures") or [""]
    if architectures[0] not in _TEXT_CONFIG_BUILDERS:
        raise CheckpointConversionError(
            f"{source}: llm_config architecture {architectures[0]!r} is not supported; expected one of "
            f"{sorted(_TEXT_CONFIG_BUILDERS)}."
        )
    return architectures[0]


def _text_config(llm: dict, source: str):
    return _TEXT_CONFIG_BUILDERS[language_model_architecture(llm, source)](llm, source)


def _native_kwargs(llm: dict) -> dict:
    dropped = _RUNTIME_KEYS | _LEGACY_GENERIC_KEYS
    return {key: value for key, value in llm.items() if key not in dropped} | {"tie_word_embeddings": False}


def _qwen2_config(llm: dict, source: str) -> Qwen2Config:
    return Qwen2Config(**_native_kwargs(llm))


def _llama_config(llm: dict, source: str) -> LlamaConfig:
    return LlamaConfig(**_native_kwargs(llm))


def _phi3_config(llm: dict, source: str) -> Phi3Config:
    kwargs = _native_kwargs(llm)
    rope_scaling = kwargs.pop("rope_scaling", None)
    rope_theta = kwargs.pop("rope_theta", 10000.0)
    rope = {"rope_type": "default", "rope_theta": rope_theta}
    if rope_scaling is not None:
        kind = rope_scaling.get("type", rope_scaling.get("rope_type"))
        if kind not in ("su", "longrope"):
            raise CheckpointConversionError(
                f"{source}: Phi-3 rope_scaling type {kind!r} is not supported (only 'su'/'longrope', which is "
                "transformers' 'longrope')."
            )
        rope = {
            "rope_type": "longrope",
            "rope_theta": rope_theta,
            "short_factor": list(rope_scaling["short_factor"]),
            "long_factor": list(rope_scaling["long_factor"]),
            "original_max_position_embeddings": llm.get("original_max_position_embeddings", 4096),
        }
    return Phi3Config(**kwargs, rope_parameters=rope)


def _internlm2_config(llm: dict, source: str) -> LlamaConfig:
    hidden_size, num_heads = llm["hidden_size"], llm["num_attention_heads"]
    rope_scaling = llm.get("rope_scaling")
    rope = {"rope_type": "default", "rope_theta": llm.get("rope_theta", 10000.0)}
    if rope_scaling is not None:
        kind = rope_scaling.get("type", rope_scaling.get("rope_type"))
        if kind not in ("dynamic", "linear"):
            raise CheckpointConversionError(f"{source}: InternLM2 rope_scaling type {kind!r} is not supported.")
        # Same formulas as InternLM2's Linear/DynamicNTK rotary classes, with the original context as reference.
        rope |= {"rope_type": kind, "factor": rope_scaling["factor"]}
    return LlamaConfig(
        vocab_size=llm["vocab_size"],
        hidden_size=hidden_size,
        intermediate_size=llm["intermediate_size"],
        num_hidden_layers=llm["num_hidden_layers"],
        num_attention_heads=num_heads,
        num_key_value_heads=llm.get("num_key_value_heads") or num_heads,
        head_dim=hidden_size // num_heads,
        hidden_act=llm.get("hidden_act", "silu"),
        max_position_embeddings=llm.get("max_position_embeddings", 2048),
        initializer_range=llm.get("initializer_range", 0.02),
        rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
        use_cache=True,
        pad_token_id=llm.get("pad_token_id", 0),
        bos_token_id=llm.get("bos_token_id", 1),
        eos_token_id=llm.get("eos_token_id", 2),
        tie_word_embeddings=False,
        attention_bias=llm.get("bias", True),  # InternLM2's `bias` covers wqkv and wo, as Llama's attention_bias
        mlp_bias=False,
        rope_parameters=rope,
    )


_TEXT_CONFIG_BUILDERS = {
    "Qwen2ForCausalLM": _qwen2_config,
    "LlamaForCausalLM": _llama_config,
    "Phi3ForCausalLM": _phi3_config,
    "InternLM2ForCausalLM": _internlm2_config,
}


def check_chat_config(chat_config: dict, source: str) -> None:
    """
    Checks that the fields of an original config which the conversion reads are there and of the right type.

    Args:
        chat_config (`dict`): The original config, as read from its `config.json`.
        source (`str`): Name of the config, for error messages.

    Raises:
        [`CheckpointConversionError`]: A section is missing, a size is not a positive integer, or `force_image_size` or
            `template` has the wrong type.
    """
    for name in ("vision_config", "llm_config"):
        if not isinstance(chat_config.get(name), dict):
            raise CheckpointConversionError(
                f"{source}: no {name!r} object, which every InternVLChatModel config.json has; is this an original "
                "InternVL checkpoint?"
            )
    sizes = {
        "vision_config": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "image_size", "patch_size"),
        "llm_config": ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"),
    }  # fmt: skip
    for section, names in sizes.items():
        for name in names:
            value = chat_config[section].get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CheckpointConversionError(
                    f"{source}: {section}.{name} is {value!r}, expected a positive integer."
                )
    force_image_size = chat_config.get("force_image_size")
    if force_image_size is not None and (isinstance(force_image_size, bool) or not isinstance(force_image_size, int)):
        raise CheckpointConversionError(
            f"{source}: force_image_size is {force_image_size!r}, expected a positive integer or null."
        )
    template = chat_config.get("template")
    if template is not None and not isinstance(template, str):
        raise CheckpointConversionError(f"{source}: template is {template!r}, expected a conversation template name.")
