"""Why the demo's SFT1 learned so little: short, seeded experiments on the demo's own data path.

Each experiment generates (once, cached under `--work_dir`) an ObMan-format train and test split with
`generate_obman_split`, renders their 3D views from the known meshes, turns the class-question rows into tensors
with `preprocess_chat_rows` (the tensors the demo's SFT1 trains on), trains a fresh tiny OccInternVL on them and
scores Description (the greedy class answer, exact match) with `recognize` on the held-out images (`test_rgb`),
the same scenes without the hand (`rgb_obj/`, `test_obj`) and their 3D views (`test_view`).

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
from collections import Counter
from pathlib import Path


def split_root(args) -> Path:
    low, high = args.obj_distance
    name = f"n{args.num_train}-{args.num_test}_s{args.seed}_d{low}-{high}_o{args.occlusion[0]}-{args.occlusion[1]}"
    if args.background != "gradient":
        name += f"_bg-{args.background}"
    if args.max_roll != 180:
        name += f"_roll{args.max_roll:g}"
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
            max_roll=args.max_roll,
            background=args.background,
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

    config = TinyOccInternVLConfig(
        output_dir=str(out),
        seed=args.seed,
        image_size=args.image_size,
        patch_size=args.patch_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        intermediate_size=args.intermediate_size,
        overwrite=True,
    )
    model, processor = init_tiny_checkpoint(config)
    if args.layer_scale is not None:
        import torch

        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith(("lambda_1", "lambda_2")):
                    parameter.fill_(args.layer_scale)
    return model, processor


def describe_answers(model, processor, images) -> list:
    """The greedy class answer (a class name, or `None`) to each image."""
    model.eval()
    results = model.recognize(images, processor=processor, batch_size=64, max_new_tokens=12)
    model.train()
    return [r.describe_label for r in results]


def describe_accuracy(model, processor, images, labels) -> float:
    answers = describe_answers(model, processor, images)
    return sum(a == c for a, c in zip(answers, labels, strict=True)) / len(labels)


def class_probabilities(model, processor, images):
    """`[N, 8]` softmax over the eight class answers' log-likelihoods ("The object is X.") for each image."""
    import numpy as np
    import torch

    from occ_hf.obman import OCC_CLASSES
    from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

    rows = chat_dataset([image for image in images for _ in OCC_CLASSES], [c for _ in images for c in OCC_CLASSES])
    processed = preprocess_chat_rows(rows, processor, max_length=512)
    collator = ProcessedChatCollator(pad_token_id=processor.tokenizer.pad_token_id)
    scores = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(processed), 128):
            batch = collator([processed[i] for i in range(start, min(start + 128, len(processed)))])
            labels = batch.pop("labels")[:, 1:]  # [B, T - 1], the next token at each position
            log_probs = torch.log_softmax(model(**batch).logits[:, :-1].float(), -1)
            token = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            scores += (token * (labels != -100)).sum(-1).tolist()
    model.train()
    scores = np.asarray(scores).reshape(len(images), len(OCC_CLASSES))
    probabilities = np.exp(scores - scores.max(1, keepdims=True))
    return probabilities / probabilities.sum(1, keepdims=True)


def clarity_signal(model, processor, images, labels, occlusion) -> dict:
    """How well a clarity answer could do: SFT1's own confidence (top class probability) as a predictor of its
    mistakes (AUC, and the best Reflection of "clear" for the most confident 30-70%), and the occlusion's AUC."""
    import numpy as np

    from occ_hf.obman import OCC_CLASSES

    probabilities = class_probabilities(model, processor, images)
    right = probabilities.argmax(1) == np.array([OCC_CLASSES.index(c) for c in labels])
    confidence, occlusion = probabilities.max(1), np.asarray(occlusion)

    def auc(positive, negative):
        return float(np.mean(positive[:, None] > negative[None, :])) if len(positive) and len(negative) else None

    reflection = {
        share: float(np.mean((confidence >= np.quantile(confidence, 1 - share)) == right)) for share in (0.3, 0.5, 0.7)
    }
    return {
        "description": round(float(right.mean()), 3),
        "best_constant": round(float(max(right.mean(), 1 - right.mean())), 3),
        "confidence_auc": round(auc(confidence[right], confidence[~right]), 3),
        "occlusion_auc": round(auc(occlusion[~right], occlusion[right]), 3),
        "reflection_by_confidence": {share: round(value, 3) for share, value in reflection.items()},
    }


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
    # SFT1's accuracy on images it trained on: what the seed's clarity labels are made from.
    train_rgb, train_labels = train_rows[0][1][: args.num_test], train_rows[0][2][: args.num_test]
    _, test_rgb, test_labels = images_of(root, "test", "rgb")
    _, test_obj, _ = images_of(root, "test", "rgb_obj")
    _, test_view, _ = images_of(root, "test", "view")
    run_dir = Path(args.work_dir) / f"run-{time.time_ns()}"
    model, processor = new_model(args, run_dir / "tiny")

    def evaluate():
        return {
            "train_rgb": round(describe_accuracy(model, processor, train_rgb, train_labels), 3),
            "test_rgb": round(describe_accuracy(model, processor, test_rgb, test_labels), 3),
            "test_obj": round(describe_accuracy(model, processor, test_obj, test_labels), 3),
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
    # The most frequent mistakes on the held-out images, "true->answered": which classes the hand makes alike.
    answers = describe_answers(model, processor, test_rgb)
    confusions = Counter(f"{c}->{a}" for c, a in zip(test_labels, answers, strict=True) if a != c)
    test_occlusion = [sample.occlusion for sample in samples(root, "test")]
    signal = clarity_signal(model, processor, test_rgb, test_labels, test_occlusion)
    result = {
        "rows": args.rows,
        "steps": args.steps,
        "lr": args.lr,
        "image_size": args.image_size,
        "patch_size": args.patch_size,
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_hidden_layers,
        "intermediate_size": args.intermediate_size,
        "layer_scale": args.layer_scale,
        "obj_distance": args.obj_distance,
        "occlusion": args.occlusion,
        "max_roll": args.max_roll,
        "background": args.background,
        "num_train_images": len(images),
        "augment": args.augment,
        "final": log[-1],
        "confusions": dict(confusions.most_common(6)),
        "clarity_signal": signal,
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
    parser.add_argument("--max_roll", type=float, default=180.0, help="in-plane turn either side of upright (deg)")
    parser.add_argument("--background", default="gradient", choices=["gradient", "plain", "dark"])
    parser.add_argument("--rows", nargs="+", default=["rgb"], choices=["rgb", "rgb_obj", "view"])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval_every", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--patch_size", type=int, default=14)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_hidden_layers", type=int, default=2)
    parser.add_argument("--intermediate_size", type=int, default=256)
    parser.add_argument("--layer_scale", type=float, default=None, help="vision layer scale (InternVL's is 0.1)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    {"frame": cmd_frame, "layout": cmd_layout, "train": cmd_train}[args.command](args)


if __name__ == "__main__":
    main()
