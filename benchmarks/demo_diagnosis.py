"""Why the demo's SFT1 learned so little: short, seeded experiments on the demo's own data path.

Each experiment generates (once, cached under `--work_dir`) an ObMan-format train and test split with
`generate_obman_split`, renders their 3D views from the known meshes, turns the class-question rows into tensors
with `preprocess_chat_rows` (the tensors the demo's SFT1 trains on), trains a fresh tiny OccInternVL on them and
scores Description (the greedy class answer, exact match) on the held-out images and views with `recognize`.

Subcommands:

- `frame`: object scale and occlusion of a split (bounding box of the amodal mask, share of the frame).
- `layout`: one processed row decoded: which tokens carry the loss.
- `train`: one experiment, with the plain loop DESIGN.md section 2b measured (the demo's SFT1 runs the same
  optimiser and schedule on TRL's `SFTTrainer`, on the same processed rows).

```bash
python benchmarks/demo_diagnosis.py frame --obj_distance 0.6 0.8
python benchmarks/demo_diagnosis.py train --steps 600 --rows rgb            # the demo's images
python benchmarks/demo_diagnosis.py train --steps 600 --rows view           # object-only 3D views
python benchmarks/demo_diagnosis.py train --steps 600 --rows rgb --obj_distance 0.35 0.45 --image_size 112
```

One thread by default (`--threads`), so that runs on a shared machine compare. Results are printed as one JSON line
per experiment; benchmarks/README.md ("The demo: why SFT1 learned little") records them.
"""

import argparse
import json
import time
from pathlib import Path


def split_root(args) -> Path:
    low, high = args.obj_distance
    name = f"n{args.num_train}-{args.num_test}_s{args.seed}_d{low}-{high}_o{args.occlusion[0]}-{args.occlusion[1]}"
    return Path(args.work_dir) / name


def ensure_splits(args) -> Path:
    """Generates the train and test splits and their views under a folder named after the settings (once)."""
    from occ_hf.obman import ObManSplit, generate_obman_split
    from occ_hf.views import GroundTruthMesh, render_split_views

    root = split_root(args)
    if (root / "done").exists():
        return root
    for split, n in (("train", args.num_train), ("test", args.num_test)):
        generate_obman_split(
            root / "obman",
            n=n,
            seed=args.seed,
            split=split,
            occlusion_range=tuple(args.occlusion),
            object_distance=tuple(args.obj_distance),
            num_proc=1,
            overwrite=True,
            progress=False,
        )
        obman_split = ObManSplit(root / "obman", split, shapenet_root=root / "obman" / "ShapeNetCore.v2")
        render_split_views(obman_split, GroundTruthMesh(), root / "views", overwrite=True, progress=False)
    (root / "done").write_text("")
    return root


def samples(root: Path, split: str):
    from occ_hf.obman import ObManSplit

    return list(ObManSplit(root / "obman", split, shapenet_root=root / "obman" / "ShapeNetCore.v2"))


def images_of(root: Path, split: str, rows: str):
    """`(ids, PIL images, class names)` of a split: `rgb` (hand and object), `rgb_obj` or `view` (the 3D view)."""
    from PIL import Image

    from occ_hf.views import view_name

    ids, images, labels = [], [], []
    for sample in samples(root, split):
        if rows == "view":
            path = root / "views" / view_name(sample.sample_id, split)
        else:
            path = root / "obman" / split / rows / f"{sample.sample_id}.jpg"
        ids.append(sample.sample_id)
        images.append(Image.open(path).convert("RGB"))
        labels.append(sample.class_name)
    return ids, images, labels


def chat_dataset(images, labels):
    import datasets

    from occ_hf.cot import description_messages, get_prompt_style

    style = get_prompt_style("code")
    return datasets.Dataset.from_dict(
        {"images": [[image] for image in images], "messages": [description_messages(style, c) for c in labels]}
    )


def new_model(args, out: Path):
    from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

    config = TinyOccInternVLConfig(output_dir=str(out), seed=args.seed, image_size=args.image_size, overwrite=True)
    return init_tiny_checkpoint(config)


def describe_accuracy(model, processor, images, labels) -> float:
    model.eval()
    results = model.recognize(images, processor=processor, batch_size=64, max_new_tokens=12)
    model.train()
    return sum(r.describe_label == c for r, c in zip(results, labels, strict=True)) / len(labels)


def train_loop(args, model, processed, collator, evaluate):
    """AdamW (betas 0.9/0.98, weight decay 0.05), linear warmup then cosine, loss on the answer tokens only."""
    import math

    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.05)
    warmup = args.warmup

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(args.steps - warmup, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(args.seed)
    log = []
    model.train()
    step = 0
    while step < args.steps:
        order = torch.randperm(len(processed), generator=generator).tolist()
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = collator([processed[i] for i in order[start : start + args.batch_size]])
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                log.append({"step": step, "loss": round(loss.item(), 4), **evaluate()})
                print(json.dumps(log[-1]), flush=True)
            if step == args.steps:
                break
    return log


def cmd_frame(args):
    import numpy as np

    from occ_hf.obman import read_segm

    root = ensure_splits(args)
    boxes, areas, occlusions = [], [], []
    for sample in samples(root, "train"):
        amodal = read_segm(sample.segm_path)[..., 2] == 100  # channel 2: the amodal object mask
        ys, xs = np.nonzero(amodal)
        boxes.append(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1)
        areas.append(amodal.mean())
        occlusions.append(sample.occlusion)
    print(
        json.dumps(
            {
                "split": str(root),
                "bbox_side_px_256": [float(np.percentile(boxes, q)) for q in (10, 50, 90)],
                "object_area_share": [round(float(np.percentile(areas, q)), 4) for q in (10, 50, 90)],
                "occlusion": [round(float(np.percentile(occlusions, q)), 3) for q in (10, 50, 90)],
            }
        )
    )


def cmd_layout(args):
    from occ_hf.train.preprocess import preprocess_chat_rows

    root = ensure_splits(args)
    _, images, labels = images_of(root, "train", "rgb")
    model, processor = new_model(args, Path(args.work_dir) / "tiny-layout")
    row = preprocess_chat_rows(chat_dataset(images[:1], labels[:1]), processor, max_length=512)[0]
    ids, labels_row = row["input_ids"].tolist(), row["labels"].tolist()
    tokenizer = processor.tokenizer
    print("full row:", repr(tokenizer.decode(ids)))
    print("loss on :", [tokenizer.decode([t]) for t in labels_row if t != -100])
    print("pixel_values", tuple(row["pixel_values"].shape), float(row["pixel_values"].mean()))


def cmd_train(args):
    import torch

    from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    root = ensure_splits(args)
    train_rows = []
    for rows in args.rows:
        train_rows.append(images_of(root, "train", rows))
    images = [image for _, split_images, _ in train_rows for image in split_images]
    labels = [label for _, _, split_labels in train_rows for label in split_labels]
    _, test_rgb, test_labels = images_of(root, "test", "rgb")
    _, test_view, _ = images_of(root, "test", "view")
    run_dir = Path(args.work_dir) / f"run-{time.time_ns()}"
    model, processor = new_model(args, run_dir / "tiny")

    def evaluate():
        return {
            "test_rgb": round(describe_accuracy(model, processor, test_rgb, test_labels), 3),
            "test_view": round(describe_accuracy(model, processor, test_view, test_labels), 3),
            "seconds": round(time.perf_counter() - started, 1),
        }

    started = time.perf_counter()
    processed = preprocess_chat_rows(chat_dataset(images, labels), processor, max_length=512)
    collator = ProcessedChatCollator(
        pad_token_id=processor.tokenizer.pad_token_id,
        augment=args.augment,
        generator=torch.Generator().manual_seed(args.seed),
    )
    log = train_loop(args, model, processed, collator, evaluate)
    result = {
        "rows": args.rows,
        "steps": args.steps,
        "lr": args.lr,
        "image_size": args.image_size,
        "obj_distance": args.obj_distance,
        "occlusion": args.occlusion,
        "num_train_images": len(images),
        "augment": args.augment,
        "final": log[-1],
    }
    print("RESULT " + json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["frame", "layout", "train"])
    parser.add_argument("--work_dir", default="/tmp/occ-demo-diagnosis")
    parser.add_argument("--num_train", type=int, default=1024)
    parser.add_argument("--num_test", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--obj_distance", type=float, nargs=2, default=[0.6, 0.8])
    parser.add_argument("--occlusion", type=float, nargs=2, default=[0.1, 0.6])
    parser.add_argument("--rows", nargs="+", default=["rgb"], choices=["rgb", "rgb_obj", "view"])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval_every", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"frame": cmd_frame, "layout": cmd_layout, "train": cmd_train}[args.command](args)


if __name__ == "__main__":
    main()
