"""The rows of `reflection` and `preference` go into TRL's trainers unchanged, and the trainers train."""

import torch
from datasets import load_dataset
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

import occ_hf  # noqa: F401


def _rows(config, obman_root, tmp_path, **kwargs):
    return load_dataset(
        "occ-obman-cot", config, data_dir=str(obman_root), split="train", cache_dir=str(tmp_path / "c"), **kwargs
    )


def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _changed(model, before):
    return [name for name, p in model.named_parameters() if name in before and not torch.equal(p, before[name])]


def _args(tmp_path):
    return {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "dataloader_num_workers": 0,
    }


def test_sft_trainer_takes_reflection_rows(tiny_dir, obman_root, tmp_path):
    rows = _rows("reflection", obman_root, tmp_path, max_samples=8)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    before = _snapshot(model)
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**_args(tmp_path), assistant_only_loss=True, max_length=None),
        train_dataset=rows,
        processing_class=processor,
    )
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    changed = _changed(model, before)
    assert any(name.startswith("model.language_model") for name in changed), changed


def test_dpo_trainer_runs_mpo_on_preference_rows(tiny_dir, obman_root, tmp_path):
    rows = _rows("preference", obman_root, tmp_path)
    assert rows.num_rows >= 2
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    reference = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    before = _snapshot(model)
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=DPOConfig(
            **_args(tmp_path), loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0], max_length=None
        ),
        train_dataset=rows,
        processing_class=processor,
    )
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    assert _changed(model, before)
