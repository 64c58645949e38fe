import json
import os
import subprocess
import sys
import textwrap

import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

from occ_hf.models.occ_internvl import OccInternVLConfig, OccInternVLForConditionalGeneration, OccInternVLProcessor


def _logits(model, processor, image):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What's the object?\n"}, {"type": "image"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def test_import_occ_hf_imports_neither_torch_nor_transformers():
    code = "import sys, occ_hf; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_auto_classes_load_the_plugin_classes(tiny_dir):
    assert isinstance(AutoConfig.from_pretrained(tiny_dir), OccInternVLConfig)
    assert type(AutoModel.from_pretrained(tiny_dir)) is OccInternVLForConditionalGeneration
    assert type(AutoModelForImageTextToText.from_pretrained(tiny_dir)) is OccInternVLForConditionalGeneration
    assert type(AutoProcessor.from_pretrained(tiny_dir)) is OccInternVLProcessor


def test_saved_checkpoint_carries_auto_map_and_code(tiny_dir):
    auto_map = json.loads((tiny_dir / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_occ_internvl.OccInternVLConfig",
        "AutoModel": "modeling_occ_internvl.OccInternVLForConditionalGeneration",
        "AutoModelForImageTextToText": "modeling_occ_internvl.OccInternVLForConditionalGeneration",
    }
    processor_map = json.loads((tiny_dir / "processor_config.json").read_text())["auto_map"]
    assert processor_map == {"AutoProcessor": "processing_occ_internvl.OccInternVLProcessor"}
    # The modeling file's siblings travel with it (save_pretrained copies the files it imports, relatively).
    for name in ("configuration", "modeling", "processing", "generation", "prompts"):
        assert (tiny_dir / f"{name}_occ_internvl.py").is_file()
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["prompts"]["code"]["describe"] == ["What's the object in the hand?\n<image>"]
    assert config["tie_word_embeddings"] is False


def test_the_class_list_beside_checkpoints_is_occ_hfs():
    """configuration_occ_internvl.py keeps its own copy of the classes: remote code cannot import occ_hf.obman."""
    from occ_hf.models.occ_internvl.configuration_occ_internvl import OCC_CLASS_NAMES
    from occ_hf.obman.classes import OCC_CLASSES

    assert OCC_CLASS_NAMES == OCC_CLASSES


def test_logits_identical_after_round_trip(tiny_dir, tmp_path, images_and_views):
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    image = images_and_views[0][0]
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path)
    assert torch.equal(
        _logits(model, processor, image), _logits(reloaded, AutoProcessor.from_pretrained(tmp_path), image)
    )
    assert not torch.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight)  # untied


def test_trust_remote_code_without_the_plugin(tiny_dir, tmp_path, images_and_views):
    image_path = tmp_path / "image.png"
    images_and_views[0][0].save(image_path)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    from PIL import Image

    expected = _logits(model, processor, Image.open(image_path))
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys

        class NoOccHf:  # the test venv has occ-hf installed (editable): make this process one without it
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "occ_hf":
                    raise ModuleNotFoundError("No module named 'occ_hf'", name=name)

        sys.meta_path.insert(0, NoOccHf())
        import torch
        from PIL import Image
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

        try:
            import occ_hf
            raise AssertionError("occ_hf must not be importable here")
        except ModuleNotFoundError:
            pass
        path = {str(tiny_dir)!r}
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=True)
        base = AutoModel.from_pretrained(path, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
        content = [{{"type": "text", "text": "What's the object?\\n"}}, {{"type": "image"}}]
        messages = [{{"role": "user", "content": content}}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=[Image.open({str(image_path)!r})], return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits
        result = model.recognize([Image.open({str(image_path)!r})], processor=processor, max_new_tokens=2)[0]
        print(json.dumps({{
            "classes": [type(o).__name__ for o in (config, model, base, processor)],
            "modules": [type(o).__module__ for o in (config, model, processor)],
            "equal": torch.equal(logits, torch.load({str(tmp_path / "expected.pt")!r})),
            "stages": len(result.describe),
        }}))
        """
    )
    # Where occ_hf cannot be imported: a cwd without it, and no PYTHONPATH entry pointing at the checkout.
    # OCC_HF_AUTOLOAD=0: occ-hf's start-up hook would try to import occ_hf with transformers.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env |= {"HF_MODULES_CACHE": str(tmp_path / "modules"), "OCC_HF_AUTOLOAD": "0"}
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["classes"] == [
        "OccInternVLConfig",
        "OccInternVLForConditionalGeneration",
        "OccInternVLForConditionalGeneration",
        "OccInternVLProcessor",
    ]
    assert all(module.startswith("transformers_modules.") for module in report["modules"])
    assert report["equal"] and report["stages"] == 1


def test_a_fully_sharded_model_saves_occ_internvls_code(tiny_dir, tmp_path):
    """FSDP2's `fully_shard` swaps the model's class for a subclass that torch defines (FSDPOccInternVL...): the save
    still writes OccInternVL's code and auto_map, where transformers would copy torch's `_fsdp_*.py`."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    expected = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    saved = tmp_path / "saved"
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        fully_shard(model, mesh=init_device_mesh("cpu", (1,)))
        sharded_class = type(model)
        assert sharded_class.__name__ == "FSDPOccInternVLForConditionalGeneration"
        # What accelerate gathers for Trainer.save_model under FSDP2 (FULL_STATE_DICT).
        state_dict = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        model.save_pretrained(saved, state_dict=state_dict)
        assert type(model) is sharded_class  # FSDP2's class is back once saved
    finally:
        dist.destroy_process_group()
    config = json.loads((saved / "config.json").read_text())
    assert config["architectures"] == ["OccInternVLForConditionalGeneration"]
    assert set(config["auto_map"].values()) == {
        "configuration_occ_internvl.OccInternVLConfig",
        "modeling_occ_internvl.OccInternVLForConditionalGeneration",
    }
    for name in ("configuration", "modeling", "generation", "prompts"):
        assert (saved / f"{name}_occ_internvl.py").is_file()
    assert not list(saved.glob("_fsdp*.py"))
    reloaded = AutoModelForImageTextToText.from_pretrained(saved)
    assert type(reloaded) is OccInternVLForConditionalGeneration
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
