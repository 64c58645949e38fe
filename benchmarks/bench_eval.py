"""Evaluation speed in one script: the seed's loop, `recognize()` and the whole `occ-hf eval`, on the same generated
ObMan-format test split with its rendered 3D views.

- `seed loop`: what the seed's evaluation does, written plainly here: one image at a time, the processor and one
  `generate` per stage, the history and the pixels processed and sent again at every turn (`seed_recognize`);
- `recognize`: OccInternVL's batched three-stage inference at each `--batch_size`;
- `occ-hf eval`: `run_eval` end to end (the `occ-obman-cot` test config built from the raw split, image decoding and
  processing, the three stages, scoring and the report), its wall time; run twice, the second finding the test
  config in datasets' cache.

Images/s of each and the ratio to the seed loop; the share of images whose recognition (every stage's answer)
equals the seed loop's. The model is `occ-hf init-tiny`'s by default, or random weights of a real shape
(`--shape 1b|8b`, `real_shape.py`).

```bash
python benchmarks/bench_eval.py                                                   # CPU, tiny, 16 images
python benchmarks/bench_eval.py --shape 1b --device cuda --dtype bfloat16 --num_images 1024 --batch_size 64 256
```
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
# Runnable from a bare checkout (the GPU machine gets the working tree, not an installed package).
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("tiny", "1b", "8b"), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16.")
    parser.add_argument("--num_images", type=int, default=16, help="Generated test samples.")
    parser.add_argument("--seed_images", type=int, default=None, help="Images the seed loop runs (all by default).")
    parser.add_argument("--batch_size", type=int, nargs="+", default=[8], help="recognize() batch sizes.")
    parser.add_argument("--skip_eval", action="store_true", help="Leave out the whole `occ-hf eval` run.")
    parser.add_argument("--work_dir", default=None, help="Where model, data and reports go (a temporary folder).")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def prepare(args, work_dir: Path) -> tuple[str, Path, Path]:
    """The model, a generated test split and its views rendered from the known meshes."""
    from occ_hf.obman import ObManSplit, generate_obman_split
    from occ_hf.views import GroundTruthMesh, render_split_views

    model_dir = work_dir / f"model-{args.shape}"
    if not (model_dir / "config.json").exists():
        if args.shape == "tiny":
            from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

            init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=str(model_dir)))
        else:
            from real_shape import build_real_shape

            build_real_shape(str(model_dir), args.shape, args.device, dtype=args.dtype)
    root, views = work_dir / "obman", work_dir / "views"
    if not (root / "test").exists():
        written = generate_obman_split(root, n=args.num_images, seed=0, split="test", num_proc=min(os.cpu_count(), 16))
        split = ObManSplit(root, "test", shapenet_root=written.shapenet_root)
        render_split_views(split, GroundTruthMesh(), views, device=args.device, progress=False)
    return str(model_dir), root, views


def load_images(root: Path, views: Path, count: int):
    """The split's RGB images and their views, in id order, as PIL images."""
    from PIL import Image

    from occ_hf.views.naming import view_name

    ids = sorted(path.stem for path in (root / "test" / "rgb").iterdir())[:count]
    images = [Image.open(root / "test" / "rgb" / f"{sample_id}.jpg").convert("RGB") for sample_id in ids]
    view_images = [Image.open(views / view_name(sample_id)).convert("RGB") for sample_id in ids]
    return images, view_images


def seed_recognize(model, processor, image, view):
    """One image through the seed's three stages, as its evaluation loop runs them: every turn is the whole
    conversation through the processor (pixels processed again) and one `generate`, no cache kept. Written apart from
    `recognize()` so that the agreement figure compares two implementations."""
    import torch

    from occ_hf.models.occ_internvl.modeling_occ_internvl import OccRecognition
    from occ_hf.models.occ_internvl.processing_occ_internvl import question_content
    from occ_hf.models.occ_internvl.prompts_occ_internvl import IMAGE_MARKER, PromptStyle, parse_clarity

    config = model.config
    style = PromptStyle.from_dict(config.prompt_style, config.prompts[config.prompt_style])

    def say(messages, question, images):
        messages.append({"role": "user", "content": question_content(question, images)})
        inputs = processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        ).to(model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=config.max_new_tokens, do_sample=False)
        answer = processor.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return answer

    result, messages = OccRecognition(), []
    for turn, question in enumerate(style.describe):
        result.describe.append(say(messages, question, [image] * question.count(IMAGE_MARKER) if turn == 0 else []))
    result.reflect = say(messages, style.reflect_at_inference, [])
    result.clear = parse_clarity(result.reflect)
    if style.class_in_describe:
        result.describe_label = result.label = style.parse_class(result.describe[-1], config.class_names)
    if result.clear is False:
        result.label = None
        if view is not None:
            result.decide = say([], style.decide, [view] * style.decide.count(IMAGE_MARKER))
            result.used_view, result.label = True, style.parse_class(result.decide, config.class_names)
    elif not style.class_in_describe:
        result.decide = say(messages, style.decide_in_conversation, [])
        result.label = style.parse_class(result.decide, config.class_names)
    return result


def main(argv=None) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import occ_hf  # noqa: F401  (registers OccInternVL with the Auto classes and the dataset builder)
    from occ_hf.eval import EvalConfig, run_eval

    args = make_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(args.work_dir or scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        model_dir, root, views = prepare(args, work_dir)
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=getattr(torch, args.dtype))
        model = model.to(args.device).eval()
        processor = AutoProcessor.from_pretrained(model_dir)
        images, view_images = load_images(root, views, args.num_images)
        results: list[dict] = []

        def timed(name: str, count: int, call) -> list:
            call()  # warm-up (kernels, caches), not timed
            _synchronize(args.device)
            start = time.perf_counter()
            output = call()
            _synchronize(args.device)
            seconds = time.perf_counter() - start
            results.append({"run": name, "images": count, "seconds": seconds, "images_per_s": count / seconds})
            return output

        seed_count = args.seed_images or len(images)

        def seed_loop():
            return [
                seed_recognize(model, processor, image, view)
                for image, view in zip(images[:seed_count], view_images[:seed_count], strict=True)
            ]

        reference = timed("seed loop", seed_count, seed_loop)
        agreement = {}
        for size in args.batch_size:
            output = timed(
                f"recognize, batch {size}",
                len(images),
                lambda size=size: model.recognize(images, views=view_images, processor=processor, batch_size=size),
            )
            agreement[size] = sum(a == b for a, b in zip(output[:seed_count], reference, strict=True)) / seed_count
            results[-1]["same_as_seed_loop"] = agreement[size]
        if not args.skip_eval:
            del model
            eval_config = EvalConfig(
                model=model_dir,
                dataset="occ-obman-cot",
                data_dir=str(root),
                views_dir=str(views),
                split="test",
                output_dir=str(work_dir / "eval"),
                batch_size=max(args.batch_size),
                device=args.device,
                dtype=args.dtype,
            )
            # Twice: the first run builds the test config from the raw split (datasets caches it), the second finds
            # it built, as every later evaluation of the same data does.
            for index, name in enumerate(("occ-hf eval, dataset built", "occ-hf eval, dataset cached")):
                start = time.perf_counter()
                report, _ = run_eval(dataclasses.replace(eval_config, output_dir=str(work_dir / f"eval-{index}")))
                seconds = time.perf_counter() - start
                results.append({"run": name, "images": len(images), "seconds": seconds})
                results[-1]["images_per_s"] = len(images) / seconds
                results[-1]["metrics"] = {
                    metric: report["metrics"][metric]["accuracy"] for metric in ("description", "decision")
                }
    base = results[0]["images_per_s"]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{platform.machine()} CPU"
    print(f"evaluation at {args.shape} shape, {args.dtype}, on {device}, {len(images)} generated test images")
    print("| run | images | s | images/s | x seed loop | same answers as the seed loop |")
    print("|---|---|---|---|---|---|")
    for result in results:
        same = result.get("same_as_seed_loop")
        print(
            f"| {result['run']} | {result['images']} | {result['seconds']:.2f} | {result['images_per_s']:.1f} | "
            f"{result['images_per_s'] / base:.1f} | {'-' if same is None else f'{same:.1%}'} |"
        )
    report = {
        "shape": args.shape,
        "dtype": args.dtype,
        "device": device,
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"torch": torch.__version__},
        "runs": results,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
