"""Writes a random OccInternVL checkpoint with the real dimensions of InternVL2-1B or -8B, for GPU measurements where
no weights can be downloaded.

It starts from `occ-hf init-tiny`'s checkpoint at 448 px (so the processor, tokenizer and chat template are the real
code path: one 448 px tile = 256 image tokens) and grows the network to the named shape: the vision tower to
InternViT-300M-448px, the language model to Qwen2-0.5B (1B) or a Llama-style 7B (8B, InternLM2.5-7B's sizes), with an
untied head, as InternVL2 checkpoints have. The tokenizer stays the tiny one (a few hundred tokens) while the
embedding has the real vocabulary: speed and memory are the real model's, the text is not.

```bash
python benchmarks/real_shape.py runs/internvl2-1b-shape --shape 1b --device cuda     # 938M parameters, bf16
python benchmarks/real_shape.py runs/internvl2-8b-shape --shape 8b --device cuda     # 8.08B parameters, bf16
```
"""

import argparse
import sys
import tempfile
from pathlib import Path


# Runnable from a bare checkout (the GPU machine gets the working tree, not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VISION_300M = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
SHAPES = {
    "1b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151674,
    },
    "8b": {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 92553,
    },
}


def build_real_shape(output_dir: str, shape: str, device: str = "cpu", dtype: str = "bfloat16", seed: int = 0):
    """Builds the `shape` checkpoint (random weights) on `device` in `dtype` and saves it to `output_dir`."""
    import torch
    from transformers import AutoProcessor

    from occ_hf.models.occ_internvl.configuration_occ_internvl import OccInternVLConfig
    from occ_hf.models.occ_internvl.modeling_occ_internvl import OccInternVLForConditionalGeneration
    from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tiny_dir:
        init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=tiny_dir, image_size=448, seed=seed))
        processor = AutoProcessor.from_pretrained(tiny_dir)
        config = OccInternVLConfig.from_pretrained(tiny_dir)
    vision = config.vision_config.to_dict()
    vision.update(VISION_300M)
    # The text config is rebuilt from its dict without `layer_types`, which would keep the tiny layer count.
    text = {k: v for k, v in config.text_config.to_dict().items() if k != "layer_types"}
    text.update(SHAPES[shape], max_position_embeddings=8192)
    real = config.to_dict()
    real.update(vision_config=vision, text_config=text)
    real.pop("auto_map", None)
    config = OccInternVLConfig(**{k: v for k, v in real.items() if k not in ("model_type", "transformers_version")})
    torch.manual_seed(seed)
    with torch.device(device):
        model = OccInternVLForConditionalGeneration(config).to(getattr(torch, dtype))
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output_dir")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args(argv)
    model = build_real_shape(args.output_dir, args.shape, args.device, args.dtype)
    print(f"{args.output_dir}: {args.shape} shape, {model.num_parameters() / 1e6:.0f}M parameters, {args.dtype}")


if __name__ == "__main__":
    main()
