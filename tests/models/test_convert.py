"""Checkpoint conversion: tiny checkpoints in each original layout, native checkpoints, and unsafe archives.

Each original-layout checkpoint is written here with random weights under OpenGVLab's key names and config fields,
converted, loaded into transformers' `InternVLForConditionalGeneration`, and its logits compared with
`reference_internvl_chat.internvl_chat_logits`, an independent forward pass of the original architecture.
"""

import io
import json
import re
import tarfile
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoProcessor,
    AutoTokenizer,
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    InternVLVisionConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from occ_hf.cli import main
from occ_hf.models.occ_internvl import OccInternVLProcessor
from occ_hf.models.occ_internvl.convert_occ_internvl import (
    CheckpointConversionError,
    UnsafeArchiveError,
    convert_checkpoint,
    convert_internlm2_tokenizer,
    convert_internvl_chat_state_dict,
    split_internlm2_wqkv,
)

from .reference_internvl_chat import internvl_chat_logits


IMAGE_SIZE, PATCH_SIZE, IMAGE_TOKENS = 28, 7, 4  # a 4x4 patch grid, pixel-shuffled to 2x2 = 4 tokens
SPECIAL_TOKENS = ["<unk>", "<img>", "</img>", "<IMG_CONTEXT>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|end|>", "<video>"]  # fmt: skip
WORDS = ["system", "user", "assistant", "What's", "the", "object", "in", "hand?", "The", "is", "jar."]
VOCAB = 64


def make_tokenizer(folder) -> PreTrainedTokenizerFast:
    """A tiny fast tokenizer with InternVL's special tokens, built offline and saved to `folder`."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + WORDS + ["\n"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(r"\n| ", behavior="isolated")
    backend.add_special_tokens(SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<unk>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def vision_config(qk_norm: bool) -> dict:
    """An InternViT config: the 300M layout (layer norm, qkv bias) or the 6B one (RMS norm, q/k norms)."""
    return {
        "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": IMAGE_SIZE,
        "patch_size": PATCH_SIZE, "num_channels": 3, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
        "norm_type": "rms_norm" if qk_norm else "layer_norm", "qk_normalization": qk_norm, "qkv_bias": not qk_norm,
        "use_flash_attn": False, "drop_path_rate": 0.0, "dropout": 0.0, "attention_dropout": 0.0,
        "initializer_factor": 0.1, "torch_dtype": "float32",
    }  # fmt: skip


LLM_CONFIGS = {
    "qwen2": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": VOCAB, "hidden_size": 48,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_scaling": None, "use_sliding_window": False, "sliding_window": 256, "max_window_layers": 2,
        "bos_token_id": 4, "eos_token_id": 5, "torch_dtype": "bfloat16", "_name_or_path": "Qwen/Qwen2-0.5B-Instruct",
    },
    "internlm2": {
        "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "vocab_size": VOCAB, "hidden_size": 48,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
        "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 1000000,
        "rope_scaling": {"type": "dynamic", "factor": 2.0}, "bias": True, "pad_token_id": 0, "bos_token_id": 1,
        "eos_token_id": 2, "attn_implementation": "eager", "tie_word_embeddings": False,
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config"},
    },
    "llama": {  # InternVL2-40B's Nous-Hermes-2-Yi-34B and InternVL2-76B's Hermes-2-Theta-Llama-3-70B
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": VOCAB, "hidden_size": 48,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
        "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 5000000.0,
        "rope_scaling": None, "attention_bias": False, "bos_token_id": 1, "eos_token_id": 5, "pad_token_id": 0,
    },
    "phi3": {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "vocab_size": VOCAB, "hidden_size": 48,
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "hidden_act": "silu", "max_position_embeddings": 512, "original_max_position_embeddings": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 512, "bos_token_id": 1, "eos_token_id": 9,
        "pad_token_id": 0, "rope_scaling": {"type": "su", "short_factor": [1.0, 1.1, 1.3, 1.7, 2.0, 2.5],
                                            "long_factor": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]},
    },
}  # fmt: skip
# What transformers 4.37 wrote into every sub-config of InternVL2's config.json beside the network's own fields.
LEGACY_CONFIG_KEYS = {
    "add_cross_attention": False, "bad_words_ids": None, "chunk_size_feed_forward": 0, "do_sample": False,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}, "max_length": 20,
    "num_beams": 1, "output_attentions": False, "prefix": None, "pruned_heads": {}, "return_dict": True,
    "temperature": 1.0, "tf_legacy_loss": False, "top_k": 50, "top_p": 1.0, "torchscript": False,
    "transformers_version": "4.37.2", "use_bfloat16": True,
}  # fmt: skip
LLM_CONFIGS = {name: LEGACY_CONFIG_KEYS | config for name, config in LLM_CONFIGS.items()}
TEMPLATES = {"qwen2": "Hermes-2", "internlm2": "internlm2-chat", "phi3": "phi3-chat", "llama": "Hermes-2"}


def original_config(llm: str, qk_norm: bool = False) -> dict:
    return {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "template": TEMPLATES[llm],
        "vision_config": vision_config(qk_norm), "llm_config": LLM_CONFIGS[llm], "downsample_ratio": 0.5,
        "ps_version": "v2", "select_layer": -1, "force_image_size": IMAGE_SIZE, "dynamic_image_size": True,
        "use_thumbnail": True, "max_dynamic_patch": 6, "min_dynamic_patch": 1, "use_backbone_lora": 0,
        "use_llm_lora": 0, "torch_dtype": "float32",
        "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"},
    }  # fmt: skip


def original_state_dict(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under InternVLChatModel's key names and shapes."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    vision, llm = config["vision_config"], config["llm_config"]
    c, m, grid = vision["hidden_size"], vision["intermediate_size"], IMAGE_SIZE // PATCH_SIZE
    weights = {
        "vision_model.embeddings.class_embedding": rand(1, 1, c),
        "vision_model.embeddings.position_embedding": rand(1, grid * grid + 1, c),
        "vision_model.embeddings.patch_embedding.weight": rand(c, 3, PATCH_SIZE, PATCH_SIZE, scale=0.1),
        "vision_model.embeddings.patch_embedding.bias": rand(c),
    }
    for i in range(vision["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        shapes = {"attn.qkv.weight": (3 * c, c), "attn.proj.weight": (c, c), "attn.proj.bias": (c,)}
        shapes |= {"mlp.fc1.weight": (m, c), "mlp.fc1.bias": (m,), "mlp.fc2.weight": (c, m), "mlp.fc2.bias": (c,)}
        weights |= {p + name: rand(*shape) for name, shape in shapes.items()}
        weights |= {p + name: 1 + rand(c) for name in ("norm1.weight", "norm2.weight")}
        weights |= {p + name: 0.5 + rand(c) for name in ("ls1", "ls2")}
        if vision["qkv_bias"]:
            weights[p + "attn.qkv.bias"] = rand(3 * c)
        if vision["norm_type"] == "layer_norm":
            weights |= {p + "norm1.bias": rand(c), p + "norm2.bias": rand(c)}
        if vision["qk_normalization"]:
            weights |= {p + "attn.q_norm.weight": 1 + rand(c), p + "attn.k_norm.weight": 1 + rand(c)}
    d = llm["hidden_size"]
    weights |= {"mlp1.0.weight": 1 + rand(4 * c), "mlp1.0.bias": rand(4 * c), "mlp1.1.weight": rand(d, 4 * c),
                "mlp1.1.bias": rand(d), "mlp1.3.weight": rand(d, d), "mlp1.3.bias": rand(d)}  # fmt: skip
    heads, kv_heads, ff = llm["num_attention_heads"], llm["num_key_value_heads"], llm["intermediate_size"]
    head_dim = d // heads
    arch = llm["architectures"][0]
    lm = "language_model.model."
    vocab = llm["vocab_size"]
    weights[lm + ("tok_embeddings" if arch == "InternLM2ForCausalLM" else "embed_tokens") + ".weight"] = rand(vocab, d)
    weights[lm + "norm.weight"] = 1 + rand(d)
    weights["language_model.output.weight" if arch == "InternLM2ForCausalLM" else "language_model.lm_head.weight"] = (
        rand(vocab, d)
    )
    for i in range(llm["num_hidden_layers"]):
        p = f"{lm}layers.{i}."
        qkv_rows = (heads + 2 * kv_heads) * head_dim
        if arch == "InternLM2ForCausalLM":
            weights |= {p + "attention.wqkv.weight": rand(qkv_rows, d), p + "attention.wo.weight": rand(d, d),
                        p + "feed_forward.w1.weight": rand(ff, d), p + "feed_forward.w3.weight": rand(ff, d),
                        p + "feed_forward.w2.weight": rand(d, ff), p + "attention_norm.weight": 1 + rand(d),
                        p + "ffn_norm.weight": 1 + rand(d)}  # fmt: skip
            if llm["bias"]:
                weights |= {p + "attention.wqkv.bias": rand(qkv_rows), p + "attention.wo.bias": rand(d)}
            continue
        weights |= {p + "self_attn.o_proj.weight": rand(d, d), p + "mlp.down_proj.weight": rand(d, ff),
                    p + "input_layernorm.weight": 1 + rand(d),
                    p + "post_attention_layernorm.weight": 1 + rand(d)}  # fmt: skip
        if arch == "Phi3ForCausalLM":
            weights |= {
                p + "self_attn.qkv_proj.weight": rand(qkv_rows, d),
                p + "mlp.gate_up_proj.weight": rand(2 * ff, d),
            }
        else:
            weights |= {p + "self_attn.q_proj.weight": rand(heads * head_dim, d),
                        p + "self_attn.k_proj.weight": rand(kv_heads * head_dim, d),
                        p + "self_attn.v_proj.weight": rand(kv_heads * head_dim, d),
                        p + "mlp.gate_proj.weight": rand(ff, d), p + "mlp.up_proj.weight": rand(ff, d)}  # fmt: skip
            if arch == "Qwen2ForCausalLM":  # Qwen2 has q/k/v biases, Llama none
                for name in ("q_proj", "k_proj", "v_proj"):
                    weights[f"{p}self_attn.{name}.bias"] = rand(weights[f"{p}self_attn.{name}.weight"].shape[0])
    return weights


def write_original(
    folder,
    llm: str,
    weights_format: str,
    qk_norm: bool = False,
    tokenizer: bool = True,
    select_layer: int = -1,
    vocab_size: int = VOCAB,
):
    """Writes an original-layout checkpoint; returns (config, state_dict)."""
    folder.mkdir(parents=True)
    config = original_config(llm, qk_norm) | {"select_layer": select_layer}
    config["llm_config"] = config["llm_config"] | {"vocab_size": vocab_size}
    state_dict = original_state_dict(config)
    (folder / "config.json").write_text(json.dumps(config))
    if weights_format == "safetensors":
        save_file(state_dict, folder / "model.safetensors")
    elif weights_format == "bin":
        torch.save(state_dict, folder / "pytorch_model.bin")
    else:  # two safetensors shards and their index
        names = sorted(state_dict)
        shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        for shard, keys in shards.items():
            save_file({k: state_dict[k] for k in keys}, folder / shard)
        weight_map = {k: shard for shard, keys in shards.items() for k in keys}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    if tokenizer:
        make_tokenizer(folder)
    return config, state_dict


def model_inputs(batch: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    context = SPECIAL_TOKENS.index("<IMG_CONTEXT>")
    text = torch.randint(len(SPECIAL_TOKENS), VOCAB, (batch, 9), generator=g)
    image = torch.tensor([SPECIAL_TOKENS.index("<img>")] + [context] * IMAGE_TOKENS + [SPECIAL_TOKENS.index("</img>")])
    input_ids = torch.cat([text[:, :3], image.expand(batch, -1), text[:, 3:]], dim=1)
    return input_ids, torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)


CASES = {  # id: (llm, weights format, InternViT-6B-style q/k norms, select_layer)
    "qwen2": ("qwen2", "safetensors", False, -1),
    "internlm2": ("internlm2", "bin", True, -1),
    "phi3": ("phi3", "sharded", False, -1),
    "llama": ("llama", "safetensors", True, -1),
    "qwen2-penultimate-vit-layer": ("qwen2", "bin", True, -2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_original_checkpoint_matches_reference(tmp_path, case):
    llm, weights_format, qk_norm, select_layer = CASES[case]
    config, state_dict = write_original(tmp_path / "src", llm, weights_format, qk_norm, select_layer=select_layer)
    summary = convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert (
        summary.source_format == "internvl_chat" and summary.language_model == config["llm_config"]["architectures"][0]
    )
    assert summary.dtype == "float32" and summary.has_processor

    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    assert model.config.text_config.model_type == {"internlm2": "llama"}.get(llm, llm)
    assert not model.config.tie_word_embeddings and model.config.image_seq_length == IMAGE_TOKENS
    assert not hasattr(model.config.text_config, "tf_legacy_loss")  # 4.x's generic keys are not carried over
    assert model.num_parameters() == sum(t.numel() for t in state_dict.values())
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
        reference = internvl_chat_logits(
            state_dict, config, pixel_values, input_ids, SPECIAL_TOKENS.index("<IMG_CONTEXT>")
        )
    assert reference.abs().max() > 1.0  # random weights give large, informative logits
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_internlm2_wqkv_split_follows_kv_head_groups():
    llm = {"num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 8}  # head_dim 2, 2 query heads per kv
    rows = torch.arange(16.0)  # fused rows: kv0 [q0 q0 q1 q1 k0 k0 v0 v0], kv1 [q2 q2 q3 q3 k1 k1 v1 v1]
    query, key, value = split_internlm2_wqkv(rows, llm)
    assert query.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert key.tolist() == [4, 5, 12, 13] and value.tolist() == [6, 7, 14, 15]
    weight_query, _, _ = split_internlm2_wqkv(torch.arange(16.0)[:, None].expand(16, 8), llm)
    assert weight_query[:, 0].tolist() == query.tolist()


def test_chat_template_renders_the_original_conversation(tmp_path):
    """The processor's prompt equals what InternVLChatModel.chat() builds (Hermes-2, MPT style) token for token."""
    write_original(tmp_path / "src", "qwen2", "safetensors")
    convert_checkpoint(tmp_path / "src", tmp_path / "out")
    processor = InternVLProcessor.from_pretrained(tmp_path / "out")
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What's the object in the hand?"}]}
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    system = (
        "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
    )
    original = (f"<|im_start|>system\n{system}<|im_end|><|im_start|>user\n<image>\nWhat's the object in the hand?"
                "<|im_end|><|im_start|>assistant\n")  # fmt: skip
    assert prompt == original.replace("<image>", "<IMG_CONTEXT>")
    from PIL import Image

    # A 40x30 image in 28 px tiles, at most 6: dynamic_preprocess picks a 3x2 grid, plus the thumbnail.
    inputs = processor(text=prompt, images=Image.new("RGB", (40, 30), "red"), return_tensors="pt")
    image = "<img>" + "<IMG_CONTEXT>" * IMAGE_TOKENS * 7 + "</img>"
    assert inputs["input_ids"][0].tolist() == processor.tokenizer(original.replace("<image>", image))["input_ids"]
    assert inputs["pixel_values"].shape == (7, 3, IMAGE_SIZE, IMAGE_SIZE)
    # chat() stops on the separator, <|im_end|>, and a system message replaces the default one.
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text())["eos_token_id"] == 5
    with_system = processor.apply_chat_template([{"role": "system", "content": "Be brief."}, *messages])
    assert with_system.startswith("<|im_start|>system\nBe brief.<|im_end|><|im_start|>user\n")


def test_remote_code_tokenizer_needs_a_replacement(tmp_path):
    """InternLM2's tokenizer loads only with remote code: the converter asks for a fast tokenizer and uses it."""
    write_original(tmp_path / "src", "internlm2", "bin", tokenizer=False)
    (tmp_path / "src" / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "InternLM2Tokenizer", "auto_map": {"AutoTokenizer": ["x.InternLM2Tokenizer"]}})
    )
    with pytest.raises(CheckpointConversionError, match="--tokenizer"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")
    make_tokenizer(tmp_path / "fast_tokenizer")
    summary = convert_checkpoint(tmp_path / "src", tmp_path / "out", tokenizer=tmp_path / "fast_tokenizer")
    assert summary.has_processor and "internlm2-chat" in summary.chat_template_source
    assert InternVLProcessor.from_pretrained(tmp_path / "out").image_token == "<IMG_CONTEXT>"


def test_archive_source_and_cli(tmp_path, capsys):
    write_original(tmp_path / "InternVL2-1B", "qwen2", "safetensors")
    with tarfile.open(tmp_path / "InternVL2-1B.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "InternVL2-1B", arcname="InternVL2-1B")
    main(["convert-checkpoint", str(tmp_path / "InternVL2-1B.tar.gz"), str(tmp_path / "out"), "--dtype", "bfloat16"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["source_format"] == "internvl_chat" and summary["dtype"] == "bfloat16"
    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out")
    assert model.dtype == torch.bfloat16
    with pytest.raises(CheckpointConversionError, match="not empty"):
        main(["convert-checkpoint", str(tmp_path / "InternVL2-1B.tar.gz"), str(tmp_path / "out")])


def test_unknown_weight_and_unsupported_config_are_refused(tmp_path):
    config = original_config("qwen2")
    state_dict = original_state_dict(config)
    with pytest.raises(CheckpointConversionError, match="vision_model.encoder.layers.0.attn.qkv.lora_A.weight"):
        convert_internvl_chat_state_dict(
            state_dict | {"vision_model.encoder.layers.0.attn.qkv.lora_A.weight": torch.ones(1)}, config
        )
    write_original(tmp_path / "src", "qwen2", "safetensors")
    config["ps_version"] = "v1"
    (tmp_path / "src" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointConversionError, match="ps_version 'v1'"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")


def native_checkpoint(folder) -> InternVLForConditionalGeneration:
    """A tiny transformers-native InternVL checkpoint (tied embeddings, as InternVL3-1B-hf) with its processor."""
    torch.manual_seed(0)
    config = InternVLConfig(
        vision_config=InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        text_config=Qwen2Config(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
        image_token_id=SPECIAL_TOKENS.index("<IMG_CONTEXT>"), image_seq_length=IMAGE_TOKENS, tie_word_embeddings=True,
    )  # fmt: skip
    model = InternVLForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    make_tokenizer(folder / "tokenizer")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder / "tokenizer", extra_special_tokens={
        "start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>"})  # fmt: skip
    chat_template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=IMAGE_TOKENS,
        chat_template=chat_template,
    ).save_pretrained(folder)
    return model


def test_native_checkpoint_round_trip(tmp_path):
    source = native_checkpoint(tmp_path / "InternVL3-1B-hf")
    with tarfile.open(tmp_path / "InternVL3-1B-hf.tgz", "w:gz") as tar:
        tar.add(tmp_path / "InternVL3-1B-hf", arcname=".")
    summary = convert_checkpoint(tmp_path / "InternVL3-1B-hf.tgz", tmp_path / "out")
    assert summary.source_format == "transformers" and summary.has_processor
    assert summary.language_model == "Qwen2ForCausalLM" and summary.chat_template_source.startswith("the source")
    converted = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            converted(input_ids=input_ids, pixel_values=pixel_values).logits,
            source(input_ids=input_ids, pixel_values=pixel_values).logits,
            atol=0,
            rtol=0,
        )
    # An OccInternVL processor: the source's chat template under the stage prelude, tiling as the source did.
    source_processor = InternVLProcessor.from_pretrained(tmp_path / "InternVL3-1B-hf")
    processor = AutoProcessor.from_pretrained(tmp_path / "out")
    assert type(processor) is OccInternVLProcessor and processor.image_processor.crop_to_patches
    assert processor.chat_template.endswith(source_processor.chat_template)
    messages = [{"role": "user", "content": "What's the object in the hand?"}]
    assert processor.apply_chat_template(messages) == source_processor.apply_chat_template(messages)
    staged = [{"role": "user", "content": [{"type": "stage", "stage": "describe"}, {"type": "image"}]}]
    assert processor.apply_chat_template(staged) == (
        "<|im_start|>user\nWhat's the object in the hand?\n<IMG_CONTEXT><|im_end|>\n"
    )
    # A plain InternVL output keeps the source's processor as it is.
    convert_checkpoint(
        tmp_path / "InternVL3-1B-hf",
        tmp_path / "plain",
        config_class=InternVLConfig,
        model_class=InternVLForConditionalGeneration,
    )
    assert type(AutoProcessor.from_pretrained(tmp_path / "plain")) is InternVLProcessor
    assert InternVLProcessor.from_pretrained(tmp_path / "plain").chat_template == source_processor.chat_template


def _tar_with(path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(path, "w:gz") as tar:
        config = json.dumps({"model_type": "internvl_chat"}).encode()
        info = tarfile.TarInfo("ckpt/config.json")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../x"), "climbs out"),
        (tarfile.TarInfo("ckpt/../../x"), "climbs out"),
        (tarfile.TarInfo("/tmp/occ_hf_absolute_x"), "absolute path"),
        (_symlink("ckpt/model.safetensors", "/etc/passwd"), "symbolic link"),
        (_hardlink("ckpt/model.safetensors", "../x"), "hard link"),
        (_device("ckpt/model.safetensors"), "not a regular file"),
    ],
    ids=["parent", "nested-parent", "absolute", "symlink", "hardlink", "device"],
)
def test_malicious_archive_is_refused_and_extracts_nothing(tmp_path, member, message):
    archive = tmp_path / "evil" / "ckpt.tar.gz"
    archive.parent.mkdir()
    _tar_with(archive, member, b"pwned" if member.isfile() else b"")
    with pytest.raises(UnsafeArchiveError, match=message):
        convert_checkpoint(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists() and not (tmp_path / "evil" / "x").exists()
    assert sorted(p.name for p in archive.parent.iterdir()) == ["ckpt.tar.gz"]
    assert not (tmp_path.parent / "x").exists()
    from occ_hf.models.occ_internvl.convert_occ_internvl import extract_archive

    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


class SubclassConfig(InternVLConfig):
    """Stands for OccInternVLConfig: InternVL's config with its own model_type (and, there, extra fields)."""

    model_type = "occ_internvl_conversion_test"


class SubclassForConditionalGeneration(InternVLForConditionalGeneration):
    config_class = SubclassConfig


def test_output_classes_are_swappable(tmp_path):
    """The lead wires the converter into OccInternVL by passing its classes; nothing else changes."""
    config, state_dict = write_original(tmp_path / "src", "internlm2", "bin")
    convert_checkpoint(
        tmp_path / "src",
        tmp_path / "out",
        config_class=SubclassConfig,
        model_class=SubclassForConditionalGeneration,
    )
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["model_type"] == "occ_internvl_conversion_test"
    assert written["architectures"] == ["SubclassForConditionalGeneration"]
    model = SubclassForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    assert isinstance(model.config, SubclassConfig)
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
    context_id = SPECIAL_TOKENS.index("<IMG_CONTEXT>")
    reference = internvl_chat_logits(state_dict, config, pixel_values, input_ids, context_id)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging left behind


def test_tokenizer_must_match_the_source_vocabulary(tmp_path):
    write_original(tmp_path / "src", "qwen2", "safetensors", tokenizer=False)
    # The source's own record of its added tokens, as InternVL2's tokenizer_config.json keeps it.
    decoder = {str(i): {"content": token, "special": True} for i, token in enumerate(SPECIAL_TOKENS)}
    (tmp_path / "src" / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "InternLM2Tokenizer", "auto_map": {}, "added_tokens_decoder": decoder})
    )
    make_tokenizer(tmp_path / "same_vocabulary")
    summary = convert_checkpoint(tmp_path / "src", tmp_path / "out", tokenizer=tmp_path / "same_vocabulary")
    assert summary.has_processor
    shuffled = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({t: i for i, t in enumerate(reversed(SPECIAL_TOKENS))}, "<unk>"))
    )
    shuffled.save_pretrained(tmp_path / "other_vocabulary")
    with pytest.raises(CheckpointConversionError, match="does not match the checkpoint's own tokens"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out2", tokenizer=tmp_path / "other_vocabulary")


def test_single_tile_source_warns_about_processor_tiling(tmp_path):
    config, _ = write_original(tmp_path / "src", "phi3", "safetensors")
    config["dynamic_image_size"] = False
    (tmp_path / "src" / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="crop_to_patches=False"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")


def test_missing_weight_is_refused(tmp_path):
    """The converted weights are loaded strictly: a weight missing from the source is an error, not a random init."""
    config, state_dict = write_original(tmp_path / "src", "qwen2", "safetensors")
    del state_dict["mlp1.3.bias"]
    save_file(state_dict, tmp_path / "src" / "model.safetensors")
    with pytest.raises(CheckpointConversionError, match=r"do not fit.*model\.multi_modal_projector\.linear_2\.bias"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_converts_into_occ_internvl(tmp_path):
    """The one-line wiring: OccInternVL's classes in, a registered checkpoint with the original outputs out."""
    from transformers import AutoModelForImageTextToText

    from occ_hf.models.occ_internvl import OccInternVLConfig, OccInternVLForConditionalGeneration

    config, state_dict = write_original(tmp_path / "src", "internlm2", "bin")
    convert_checkpoint(
        tmp_path / "src",
        tmp_path / "out",
        config_class=OccInternVLConfig,
        model_class=OccInternVLForConditionalGeneration,
    )
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    assert written["model_type"] == "occ_internvl" and "auto_map" in written
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "out").eval()
    assert isinstance(model, OccInternVLForConditionalGeneration)
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
    context_id = SPECIAL_TOKENS.index("<IMG_CONTEXT>")
    reference = internvl_chat_logits(state_dict, config, pixel_values, input_ids, context_id)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def test_weights_only_conversion_with_an_explicit_image_token(tmp_path):
    """Without a loadable tokenizer, image_token_id converts the weights alone; no processor is written."""
    config, state_dict = write_original(tmp_path / "src", "internlm2", "bin", tokenizer=False)
    context_id = SPECIAL_TOKENS.index("<IMG_CONTEXT>")
    main(["convert-checkpoint", str(tmp_path / "src"), str(tmp_path / "out"), "--image_token_id", str(context_id)])
    assert not (tmp_path / "out" / "processor_config.json").exists()
    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    assert model.config.image_token_id == context_id
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
    reference = internvl_chat_logits(state_dict, config, pixel_values, input_ids, context_id)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointConversionError, match="outside the language model's vocabulary"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out2", image_token_id=VOCAB)


# InternLM2's added tokens as InternVL2-2B's tokenizer_config.json lists them: the chat and tool tokens are pieces of
# the sentencepiece model, InternVL's image and grounding tokens come after its vocabulary.
INTERNLM2_PIECES = ["<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|action_start|>", "<|im_end|>",
                    "<|im_start|>"]  # fmt: skip
INTERNVL_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
SENTENCEPIECE_CORPUS = [
    "What's the object in the hand?", "Is it clear to identify the object in the hand?", "The object is bottle.",
    "The object is remote.", "Yes.", "No.", "user", "assistant", "system", "Please analyze this image step by step.",
    "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型", "物体在手中", "0 1 2 3 4 5 6 7 8 9 10 42 2025",
    "def recognize(image):\n    return model(image)\n", "  two  spaces\tand a tab",
]  # fmt: skip
TOKENIZER_TEXTS = [
    "The object is bottle.",
    "What's the object in the hand?\n",
    "  leading, double  and trailing spaces  ",
    "line one\nline two\n\n\tindented",
    "digits 0123456789, 3.14 and 2025",
    "你是由上海人工智能实验室开发的。物体是什么？",
    "emoji 🙂🚀 and ü, unseen in training",
    "<|im_start|>system\nBe brief.<|im_end|><|im_start|>user\n<img><IMG_CONTEXT><IMG_CONTEXT></img>\n"
    "What's the object in the hand?<|im_end|><|im_start|>assistant\nThe object is jar.<|im_end|>",
    "<s>text between</s> bos and eos<unk>",
    "",
]


def write_internlm2_sentencepiece_tokenizer(folder, add_dummy_prefix: bool):
    """A tiny BPE sentencepiece model with InternLM2's settings, and its remote-code tokenizer_config.json."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCEPIECE_CORPUS * 8), model_writer=model, model_type="bpe", vocab_size=420,
        hard_vocab_limit=False, byte_fallback=True, add_dummy_prefix=add_dummy_prefix, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, user_defined_symbols=INTERNLM2_PIECES, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, character_coverage=0.9995, num_threads=1, minloglevel=2,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    size = processor.get_piece_size()
    added = {token: processor.piece_to_id(token) for token in ["<unk>", "<s>", "</s>", *INTERNLM2_PIECES]}
    added |= {token: size + index for index, token in enumerate(INTERNVL_TOKENS)}
    entry = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "InternLM2Tokenizer",
                "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
                "added_tokens_decoder": {str(i): {"content": token, **entry} for token, i in added.items()},
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
                "clean_up_tokenization_spaces": False,
            }  # fmt: skip
        )
    )
    return processor, added


def internlm2_slow_ids(processor, added: dict[str, int], text: str) -> list[int]:
    """What InternLM2Tokenizer gives: <s>, then sentencepiece's encode of each piece between added tokens."""
    pattern = "(" + "|".join(re.escape(token) for token in sorted(added, key=len, reverse=True)) + ")"
    ids = [added["<s>"]]
    for piece in re.split(pattern, text):
        ids += [added[piece]] if piece in added else processor.encode(piece)
    return ids


@pytest.mark.parametrize("add_dummy_prefix", [True, False], ids=["dummy-prefix", "no-dummy-prefix"])
def test_internlm2_sentencepiece_tokenizer_is_converted(tmp_path, add_dummy_prefix):
    """Without --tokenizer, InternLM2's tokenizer.model becomes a fast tokenizer giving the slow tokenizer's ids."""
    processor, added = write_internlm2_sentencepiece_tokenizer(tmp_path / "tokenizer", add_dummy_prefix)
    vocab_size = processor.get_piece_size() + len(INTERNVL_TOKENS)
    write_original(tmp_path / "src", "internlm2", "bin", tokenizer=False, vocab_size=vocab_size)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (tmp_path / "src" / name).write_bytes((tmp_path / "tokenizer" / name).read_bytes())
    summary = convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert summary.has_processor and "internlm2-chat" in summary.chat_template_source
    assert not (tmp_path / "out" / "tokenizer.model").exists()  # nothing left that needs remote code

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    for token, token_id in added.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id
    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out")
    assert model.config.image_token_id == added["<IMG_CONTEXT>"] == tokenizer.context_image_token_id
    for text in TOKENIZER_TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert ids == internlm2_slow_ids(processor, added, text), text
        if not any(token in text for token in added):
            assert tokenizer.decode(ids, skip_special_tokens=True) == text
    emoji_ids = tokenizer("🙂", add_special_tokens=False)["input_ids"]
    assert [processor.id_to_piece(i) for i in emoji_ids][-4:] == ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]
    # The converted checkpoint's chat prompt tokenizes as the original chat() would.
    chat = InternVLProcessor.from_pretrained(tmp_path / "out")
    prompt = chat.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "What's the object in the hand?"}]}],
        add_generation_prompt=True,
    )
    assert chat.tokenizer(prompt)["input_ids"] == internlm2_slow_ids(processor, added, prompt)


def test_internlm2_tokenizer_with_a_gap_in_added_ids_is_refused(tmp_path):
    processor, added = write_internlm2_sentencepiece_tokenizer(tmp_path, add_dummy_prefix=True)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    entry = config["added_tokens_decoder"].pop(str(added["<img>"]))
    config["added_tokens_decoder"][str(added["<img>"] + 100)] = entry
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointConversionError, match="must run on without a gap"):
        convert_internlm2_tokenizer(tmp_path)


def test_converted_checkpoint_is_an_occ_internvl_checkpoint_end_to_end(tmp_path):
    """Auto classes give OccInternVL's model and processor, the stage prompts render in the source's chat format
    (images where chat() puts them), and recognize() runs its three stages."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from occ_hf.models.occ_internvl import OccInternVLForConditionalGeneration
    from occ_hf.models.occ_internvl.processing_occ_internvl import question_content

    write_original(tmp_path / "src", "qwen2", "safetensors")
    convert_checkpoint(tmp_path / "src", tmp_path / "out")
    processor = AutoProcessor.from_pretrained(tmp_path / "out")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "out").eval()
    assert type(processor) is OccInternVLProcessor and type(model) is OccInternVLForConditionalGeneration

    system = "<|im_start|>system\nBe brief.<|im_end|>"
    for style in ("code", "paper"):
        prompts = model.config.prompts[style]
        for question in (prompts["describe"][0], prompts["decide"], prompts["joint"]):
            images = [None] * question.count("<image>")
            # chat() replaces each <image> marker of the question in place.
            original = f"{system}<|im_start|>user\n{question.replace('<image>', '<IMG_CONTEXT>')}<|im_end|>"
            for content in ([{"type": "stage", "stage": _stage_of(prompts, question)}], []):
                messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
                if not content:  # recognize()'s form: the question split at its markers into text and image parts
                    messages[1]["content"] = question_content(question, images)
                assert processor.apply_chat_template(messages, prompt_style=style) == original

    # Different sizes, so different tile counts: the batch is padded (on the left, whatever the tokenizer says).
    images = [
        Image.new("RGB", size, color) for size, color in (((40, 30), "red"), ((28, 28), "green"), ((84, 28), "blue"))
    ]
    views = [Image.new("RGB", (28, 28), "white")] * 3
    results = model.recognize(images, views=views, processor=processor, max_new_tokens=4)
    assert len(results) == 3 and all(len(r.describe) == 1 and isinstance(r.reflect, str) for r in results)
    assert results == [
        model.recognize([i], views=[v], max_new_tokens=4)[0] for i, v in zip(images, views, strict=True)
    ]
    assert results == model.recognize(images, views=views, max_new_tokens=4, reuse_cache=False)


def _stage_of(prompts: dict, question: str) -> str:
    return next(key for key in ("describe", "decide", "joint") if question in (prompts[key], *prompts["describe"]))


def _set_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


def test_unknown_template_writes_nothing_and_a_rerun_succeeds(tmp_path):
    """Bug 11: an unknown conversation template failed after the weights and config were in OUTPUT_DIR, so the rerun
    refused it as "not empty"."""
    write_original(tmp_path / "src", "qwen2", "safetensors")
    _set_config(tmp_path / "src", template="bogus")
    with pytest.raises(CheckpointConversionError, match=r"src/config\.json: conversation template 'bogus' is not kn"):
        main(["convert-checkpoint", str(tmp_path / "src"), str(tmp_path / "out")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no staging left behind
    _set_config(tmp_path / "src", template="Hermes-2")
    main(["convert-checkpoint", str(tmp_path / "src"), str(tmp_path / "out")])
    assert InternVLProcessor.from_pretrained(tmp_path / "out").chat_template.startswith("{%- set stage_prompts")


def test_failure_while_writing_leaves_the_output_folder_as_it_was(tmp_path, monkeypatch):
    """The output is staged beside OUTPUT_DIR and moved into place at the end: a late failure writes nothing there."""
    write_original(tmp_path / "src", "qwen2", "safetensors")
    (tmp_path / "out").mkdir()  # an empty folder given as the output

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(OccInternVLProcessor, "save_pretrained", disk_full)
    with pytest.raises(OSError, match="No space left"):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    monkeypatch.undo()
    convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_overwrite_replaces_the_conversion_and_keeps_other_files(tmp_path):
    write_original(tmp_path / "src", "qwen2", "safetensors")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "model-00001-of-00002.safetensors").write_bytes(b"stale shard of an earlier conversion")
    (out / "config.json").write_text("{}")
    convert_checkpoint(tmp_path / "src", out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and not (out / "model-00001-of-00002.safetensors").exists()
    assert InternVLForConditionalGeneration.from_pretrained(out).config.image_seq_length == IMAGE_TOKENS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def _legacy_bin(folder):
    """A .bin in torch.save's pre-1.6 (non-zip) format, which cannot be memory-mapped, but is plain tensors."""
    state_dict = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save(state_dict, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)


def test_legacy_bin_checkpoint_converts(tmp_path):
    """A legacy (non-zip) .bin failed with a message about mmap; it is read into memory instead."""
    config, state_dict = write_original(tmp_path / "src", "internlm2", "bin")
    _legacy_bin(tmp_path / "src")
    convert_checkpoint(tmp_path / "src", tmp_path / "out")
    model = InternVLForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    input_ids, pixel_values = model_inputs()
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=pixel_values).logits
    context_id = SPECIAL_TOKENS.index("<IMG_CONTEXT>")
    reference = internvl_chat_logits(state_dict, config, pixel_values, input_ids, context_id)
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-5)


def _damage(name: str, text: str | None = None, data: bytes | None = None, cut: bool = False):
    def damage(folder):
        path = folder / name
        if cut:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        else:
            path.write_bytes(data if data is not None else text.encode())

    return damage


def _edit_config(edit):
    def damage(folder):
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))

    return damage


class _Payload:
    """Unpickling it would run code; weights_only refuses it."""

    def __reduce__(self):
        return (print, ("ran",))


DAMAGED_SOURCES = {  # id: (weights format, damage, message)
    "config-invalid-json": ("safetensors", _damage("config.json", "{nope"), r"config\.json: not valid JSON"),
    "config-a-list": ("safetensors", _damage("config.json", "[1, 2]"), r"config\.json: holds a JSON list"),
    "no-llm-config": ("safetensors", _edit_config(lambda c: c.pop("llm_config")), r"no 'llm_config' object"),
    "no-vision-config": ("safetensors", _edit_config(lambda c: c.pop("vision_config")), r"no 'vision_config' obj"),
    "string-vocab-size": (
        "safetensors",
        _edit_config(lambda c: c["llm_config"].update(vocab_size="64")),
        r"config\.json: llm_config\.vocab_size is '64', expected a positive integer",
    ),
    "index-invalid-json": (
        "sharded",
        _damage("model.safetensors.index.json", "{bad"),
        r"model\.safetensors\.index\.json: not valid JSON",
    ),
    "index-without-weight-map": (
        "sharded",
        _damage("model.safetensors.index.json", '{"metadata": {}}'),
        r"model\.safetensors\.index\.json: no 'weight_map' object",
    ),
    "truncated-safetensors": (
        "safetensors",
        _damage("model.safetensors", cut=True),
        r"model\.safetensors: not a readable safetensors file .*download it again",
    ),
    "garbage-safetensors": (
        "safetensors",
        _damage("model.safetensors", data=b"garbage" * 10),
        r"model\.safetensors: not a readable safetensors file",
    ),
    "truncated-bin": ("bin", _damage("pytorch_model.bin", cut=True), r"pytorch_model\.bin: not a readable torch"),
    "pickle-payload-bin": (
        "bin",
        lambda folder: torch.save({"x": _Payload()}, folder / "pytorch_model.bin"),
        r"pytorch_model\.bin: holds more than plain tensors, .*nothing in it was run: Unsupported global",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_SOURCES))
def test_damaged_source_is_named_in_one_line(tmp_path, case, capsys):
    """Each damaged file gets a CheckpointConversionError naming it (not a bare JSONDecodeError, KeyError,
    SafetensorError, UnpicklingError), the CLI prints it in one line with exit 1, and nothing is written."""
    from occ_hf.cli import run

    weights_format, damage, message = DAMAGED_SOURCES[case]
    write_original(tmp_path / "src", "qwen2", weights_format)
    damage(tmp_path / "src")
    with pytest.raises(CheckpointConversionError, match=message):
        convert_checkpoint(tmp_path / "src", tmp_path / "out")
    assert run(["convert-checkpoint", str(tmp_path / "src"), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "ran" not in captured.out
    assert captured.err.startswith("occ-hf: error: CheckpointConversionError: ") and captured.err.count("\n") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_truncated_archive_and_a_member_claiming_more_than_it_holds_are_named(tmp_path):
    write_original(tmp_path / "InternVL2-1B", "qwen2", "safetensors")
    with tarfile.open(tmp_path / "whole.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "InternVL2-1B", arcname="InternVL2-1B")
    whole = (tmp_path / "whole.tar.gz").read_bytes()
    (tmp_path / "truncated.tar.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointConversionError, match=r"truncated\.tar\.gz: damaged or truncated archive \(EOFErr"):
        convert_checkpoint(tmp_path / "truncated.tar.gz", tmp_path / "out")
    with tarfile.open(tmp_path / "claims.tar.gz", "w:gz") as tar:  # a header claiming 20 GB, then the archive ends
        tar.add(tmp_path / "InternVL2-1B" / "config.json", arcname="ckpt/config.json")
        info = tarfile.TarInfo("ckpt/model.safetensors")
        info.size = 20 * 10**9
        tar.fileobj.write(info.tobuf(tar.format, tar.encoding, tar.errors))
        tar.offset += tarfile.BLOCKSIZE
    with pytest.raises(CheckpointConversionError, match=r"claims\.tar\.gz: damaged or truncated archive \(ReadError"):
        convert_checkpoint(tmp_path / "claims.tar.gz", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["InternVL2-1B", "claims.tar.gz", "truncated.tar.gz",
                                                          "whole.tar.gz"]  # fmt: skip


def test_archive_larger_than_the_free_space_is_refused_before_extracting(tmp_path, monkeypatch):
    write_original(tmp_path / "InternVL2-1B", "qwen2", "safetensors")
    with tarfile.open(tmp_path / "ckpt.tar", "w") as tar:
        tar.add(tmp_path / "InternVL2-1B", arcname="InternVL2-1B")
    # Only the free space is read; 1000 bytes is less than the checkpoint's members.
    monkeypatch.setattr(
        "occ_hf.models.occ_internvl.convert_source.shutil.disk_usage", lambda path: SimpleNamespace(free=1000)
    )
    with pytest.raises(CheckpointConversionError, match=r"ckpt\.tar: its members claim .* GB free"):
        convert_checkpoint(tmp_path / "ckpt.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()
