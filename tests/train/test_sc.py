"""The `sc` stage: the seed's two-attempt reward on hand cases; the rows built from `description`; and the tiny
OccInternVL trained a few steps through `main()` and `occ-hf train sc` on a generated split: attempt 2 is generated
from prompt + attempt 1 + the check-again question, each attempt's tokens carry their own group-normalised reward, the
trainable parameters change and the frozen vision tower does not, and LoRA stays on the language model."""

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForImageTextToText

from occ_hf import cli
from occ_hf.train import OccSCConfig
from occ_hf.train import sc as sc_stage
from occ_hf.train.sc_reward import (
    attempt_reward,
    levenshtein_distance,
    self_correction_reward,
    self_correction_reward_funcs,
    string_similarity,
)
from occ_hf.train.sc_trainer import SelfCorrectionTrainer


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
VISION = "model.vision_tower."
CHECK_AGAIN = "Please check again what's the object in the hand?"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForImageTextToText.from_pretrained(folder)
    return {name: p.detach() for name, p in model.named_parameters()}


def _run(*flags: str):
    parsed = sc_stage.make_parser().parse_args_and_config(["--config", str(RECIPES / "tiny" / "sc.yaml"), *flags])
    return sc_stage.main(*parsed)


# The reward


def test_levenshtein_and_similarity():
    assert levenshtein_distance("kitten", "sitting") == 3
    assert levenshtein_distance("", "jar") == levenshtein_distance("jar", "") == 3
    assert levenshtein_distance("can", "can") == 0
    assert string_similarity("", "") == 1.0
    assert string_similarity("jar", "") == 0.0
    assert string_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)


def test_attempt_reward_hand_cases():
    reference = "The object is jar."
    assert attempt_reward("The object is jar.", reference) == 1.0
    # The seed lower-cases and strips both sides before comparing.
    assert attempt_reward("  the object is JAR. \n", reference) == 1.0
    # "can" -> "jar": two substitutions over 18 characters.
    assert attempt_reward("The object is can.", reference) == pytest.approx(0.1 + 0.9 * (1 - 2 / 18))
    assert attempt_reward("The object is jar", reference) == pytest.approx(0.1 + 0.9 * (17 / 18))
    assert attempt_reward("", reference) == pytest.approx(0.1)
    assert attempt_reward("The object is cellphone.", reference) < attempt_reward("The object is can.", reference)


def test_self_correction_reward_shapes_the_second_attempt():
    right, wrong, reference = "The object is jar.", "The object is can.", "The object is jar."
    r_wrong = attempt_reward(wrong, reference)
    fixed = self_correction_reward(wrong, right, reference)
    assert fixed.first == pytest.approx(r_wrong)
    assert fixed.second == pytest.approx(1.0 + 0.1 * (1.0 - r_wrong))
    broken = self_correction_reward(right, wrong, reference)
    assert broken.first == 1.0
    assert broken.second == pytest.approx(r_wrong + 0.1 * (r_wrong - 1.0))
    assert self_correction_reward(right, right, reference) == (1.0, 1.0)
    assert self_correction_reward(wrong, wrong, reference) == pytest.approx((r_wrong, r_wrong))
    assert self_correction_reward(wrong, right, reference, improvement_bonus=0.5).second == pytest.approx(
        1.0 + 0.5 * (1.0 - r_wrong)
    )
    # Fixing beats staying right beats breaking.
    assert fixed.second > 1.0 > broken.second


def test_reward_funcs_read_both_attempts_of_the_completion():
    first_func, second_func = self_correction_reward_funcs(0.1)
    assert (first_func.__name__, second_func.__name__) == ("first_attempt_reward", "second_attempt_reward")
    completions = [
        [
            {"role": "assistant", "content": "The object is can."},
            {"role": "user", "content": CHECK_AGAIN},
            {"role": "assistant", "content": "The object is jar."},
        ],
        [
            {"role": "assistant", "content": "The object is jar."},
            {"role": "user", "content": CHECK_AGAIN},
            {"role": "assistant", "content": "The object is jar."},
        ],
    ]
    reference = ["The object is jar."] * 2
    r_wrong = attempt_reward("The object is can.", "The object is jar.")
    assert first_func(prompts=None, completions=completions, reference=reference) == pytest.approx([r_wrong, 1.0])
    assert second_func(completions=completions, reference=reference, images=None) == pytest.approx(
        [1.0 + 0.1 * (1.0 - r_wrong), 1.0]
    )
    with pytest.raises(ValueError, match="attempt 1, the check-again question, attempt 2"):
        first_func(completions=[[{"role": "assistant", "content": "x"}]], reference=["x"])


def test_sc_is_a_stage_of_occ_hf_train(capsys):
    from occ_hf.train import STAGES

    assert "sc" in STAGES
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "sc", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--improvement_bonus" in out and "--check_again_question" in out and "--num_generations" in out


# The rows


def _description_row(sample_id: str, answer: str) -> dict:
    return {
        "id": sample_id,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's the object in the hand?\n"},
                    {"type": "image", "text": None},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ],
    }


def test_self_correction_rows_from_description_rows():
    rows = Dataset.from_list([_description_row("00000001", "The object is knife.")])
    (row,) = sc_stage.self_correction_rows(rows)
    assert row["reference"] == "The object is knife." and row["id"] == "00000001"
    assert [turn["role"] for turn in row["prompt"]] == ["user"] and "messages" not in row
    assert row["prompt"][0]["content"][1]["type"] == "image"


def test_self_correction_rows_refuse_rows_without_a_class_answer():
    rows = Dataset.from_list([_description_row("00000002", "Yes")])  # the paper style's "long?" answer
    with pytest.raises(ValueError, match="Row 00000002: .*'Yes'.*`description` config with prompt_style=code"):
        sc_stage.self_correction_rows(rows)
    with pytest.raises(ValueError, match="builds its rows from `messages`"):
        sc_stage.self_correction_rows(Dataset.from_list([{"prompt": "x"}]))


def test_trainer_refuses_other_configs_and_rows():
    from trl import GRPOConfig

    with pytest.raises(TypeError, match="needs an OccSCConfig"):
        SelfCorrectionTrainer(model=None, args=GRPOConfig(output_dir="x", use_cpu=True))
    with pytest.raises(ValueError, match="needs `prompt` and `reference`"):
        SelfCorrectionTrainer(
            model=None, args=OccSCConfig(output_dir="x", use_cpu=True), train_dataset=Dataset.from_list([{"a": 1}])
        )


# Training the tiny model


@pytest.fixture(scope="module")
def sc_run(recipe_workdir, tmp_path_factory):
    """`main()` on the tiny recipe for 2 steps, recording each generation call (prompt ids in, completion ids out) and
    each scored batch."""
    import datasets

    generations, scored = [], []
    generate, score = (
        SelfCorrectionTrainer._generate_single_turn,
        SelfCorrectionTrainer._generate_and_score_completions,
    )

    def recording_generate(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs):
        completion_ids, logprobs = generate(self, prompt_ids, images, multimodal_fields, num_generations, **kwargs)
        generations.append(([list(ids) for ids in prompt_ids], [list(ids) for ids in completion_ids]))
        return completion_ids, logprobs

    def recording_score(self, inputs):
        output = score(self, inputs)
        scored.append({"rewards": self._rollout_rewards.clone(), **output})
        return output

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(recipe_workdir)
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", recipe_workdir / "hf_datasets_cache")
        patch.setattr(SelfCorrectionTrainer, "_generate_single_turn", recording_generate)
        patch.setattr(SelfCorrectionTrainer, "_generate_and_score_completions", recording_score)
        trainer = _run("--max_steps", "2", "--output_dir", "runs/sc-full")
    return trainer, generations, scored


def test_sc_trainable_parameters_change_and_frozen_do_not(sc_run, recipe_workdir):
    trainer, _, _ = sc_run
    before = _weights(recipe_workdir / "runs" / "tiny")
    params = dict(trainer.model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    frozen = set(params) - trainable
    assert frozen == {name for name in params if name.startswith(VISION)} and frozen
    for name in trainable:
        assert not torch.equal(params[name].detach(), before[name]), f"{name} did not train"
    for name in frozen:
        assert torch.equal(params[name].detach(), before[name]), f"{name} is frozen but changed"
    assert (recipe_workdir / "runs" / "sc-full" / "model.safetensors").is_file()


def test_the_second_attempt_is_generated_after_the_first_and_the_question(sc_run):
    trainer, generations, _ = sc_run
    assert len(generations) == 4  # 2 steps x (attempt 1, attempt 2)
    tokenizer = trainer.processing_class.tokenizer
    for (first_prompts, first_attempts), (second_prompts, _) in zip(generations[::2], generations[1::2], strict=True):
        assert len(first_prompts) == len(second_prompts) == 4  # 2 images x num_generations 2
        for prompt, attempt, second_prompt in zip(first_prompts, first_attempts, second_prompts, strict=True):
            assert second_prompt[: len(prompt) + len(attempt)] == prompt + attempt  # attempt 1's own tokens
            tail = tokenizer.decode(second_prompt[len(prompt) + len(attempt) :])
            assert tail.endswith(f"<|im_start|>user\n{CHECK_AGAIN}<|im_end|>\n<|im_start|>assistant\n"), tail
            # Attempt 1 is closed by exactly one end-of-turn token, whether it stopped or was cut at 8 tokens.
            closed = tokenizer.decode(second_prompt[len(prompt) :], skip_special_tokens=False)
            assert closed.count("<|im_end|>") == 2


def test_attempt_1_is_closed_once_whether_it_stopped_or_was_cut(sc_run):
    trainer, _, _ = sc_run
    tokenizer = trainer.processing_class.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt, answer = [5, 6, 7], tokenizer("The object is jar.", add_special_tokens=False)["input_ids"]
    stopped = trainer.second_attempt_prompt_ids(prompt, answer + [end])
    cut = trainer.second_attempt_prompt_ids(prompt, answer)
    assert stopped == cut == prompt + answer + [end] + trainer._check_again_ids
    assert tokenizer.decode(stopped[len(prompt) :]) == (
        f"The object is jar.<|im_end|>\n<|im_start|>user\n{CHECK_AGAIN}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_self_correction_figures_are_logged(sc_run):
    trainer, _, _ = sc_run
    (first, second) = [entry for entry in trainer.state.log_history if "loss" in entry]
    for entry in (first, second):
        for key in ("accuracy_attempt_1", "accuracy_attempt_2", "fixed", "broken"):
            assert 0.0 <= entry[f"self_correction/{key}"] <= 1.0
        assert 0.1 <= entry["rewards/first_attempt_reward/mean"] <= 1.0
        assert entry["completions/attempt_1_mean_length"] <= 8 and entry["completions/attempt_2_mean_length"] <= 8


def test_each_attempt_is_trained_on_its_own_group_normalised_reward(sc_run):
    _, generations, scored = sc_run
    for (_, first_attempts), batch in zip(generations[::2], scored, strict=True):
        rewards = batch["rewards"]  # [4, 2]: r1, r2 + 0.1 (r2 - r1); groups of 2 rollouts per image
        grouped = rewards.view(-1, 2, 2)  # [image, rollout, attempt]
        normalised = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
        expected = normalised.view(-1, 2)
        advantages, tool_mask, completion_mask = batch["advantages"], batch["tool_mask"], batch["completion_mask"]
        assert advantages.shape == batch["completion_ids"].shape
        assert expected.abs().sum() > 0  # the rollouts of an image differ, so there is something to learn from
        for row, attempt in enumerate(first_attempts):
            length = len(attempt)
            question = (tool_mask[row] == 0).nonzero().flatten()
            assert question.min() == length  # the question's tokens follow attempt 1 and are not trained on
            assert torch.allclose(advantages[row, :length], expected[row, 0].expand(length))
            assert torch.all(advantages[row, question] == 0)
            attempt_2 = (completion_mask[row] == 1) & (torch.arange(tool_mask.size(1)) > question.max())
            assert attempt_2.any()
            assert torch.allclose(advantages[row, attempt_2], expected[row, 1].expand(int(attempt_2.sum())))


def test_sc_through_the_cli_trains_the_language_model_not_the_vision_tower(in_recipe_workdir):
    cli.main(["train", "sc", "--config", str(RECIPES / "tiny" / "sc.yaml"), "--max_steps", "2"])
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    after = _weights(in_recipe_workdir / "runs" / "tiny-sc")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert not {name for name in changed if name.startswith(VISION)}
    assert any(name.startswith("model.language_model.") for name in changed), changed
    assert any(name.startswith("model.multi_modal_projector.") for name in changed), changed


def test_sc_lora_leaves_the_vision_tower_untouched(in_recipe_workdir):
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    trainer = _run("--max_steps", "2", "--use_peft", "--output_dir", "runs/sc-lora")
    params = dict(trainer.model.named_parameters())
    lora = {name for name in params if ".lora_" in name}
    assert lora and all(".language_model.layers." in name for name in lora)
    assert {name for name, p in params.items() if p.requires_grad} == lora
    assert any(not torch.equal(params[name], torch.zeros_like(params[name])) for name in lora if "lora_B" in name)
    for name, p in params.items():
        if name not in lora:
            base = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
            assert torch.equal(p.detach(), before[base]), f"{name} changed under LoRA"
    assert (in_recipe_workdir / "runs" / "sc-lora" / "adapter_model.safetensors").is_file()


def test_sc_evaluates_both_attempts_on_a_held_out_split(in_recipe_workdir):
    # `eval_strategy` runs the same two-attempt rollout on the test split (here 1/4 of the rows, held out by TRL's
    # `test_split_size`) and logs the self-correction figures under `eval_`.
    flags = ["--max_steps", "1", "--test_split_size", "0.25", "--eval_strategy", "steps", "--eval_steps", "1"]
    trainer = _run(*flags, "--per_device_eval_batch_size", "4", "--output_dir", "runs/sc-eval")
    (evaluation,) = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    for key in ("accuracy_attempt_1", "accuracy_attempt_2", "fixed", "broken"):
        assert 0.0 <= evaluation[f"eval_self_correction/{key}"] <= 1.0
    assert 0.1 <= evaluation["eval_rewards/first_attempt_reward/mean"] <= 1.0
    assert 0.1 <= evaluation["eval_rewards/second_attempt_reward/mean"] <= 1.0
    assert len(trainer.eval_dataset) > 0 and len(trainer.train_dataset) > len(trainer.eval_dataset)
