"""`SelfCorrectionTrainer`: TRL's `GRPOTrainer` with two-attempt rollouts, for the `sc` (self-correction) stage.

What it implements (SCoRe, Kumar et al. 2024, "Training language models to self-correct via reinforcement
learning", stage II, as the OCC-MLLM seed describes it):

- **Rollout.** For each prompt (the class question on the RGB image), the policy samples attempt 1; then the turn
  `check_again_question` ("Please check again what's the object in the hand?") is appended after attempt 1 and the
  policy samples attempt 2 *conditioned on the prompt, attempt 1 and that question*. The attempt-2 prompt is built
  by concatenating token ids (prompt + attempt 1 as sampled + the chat template's turn change and question), never
  by re-tokenizing text, so the log-probabilities trained on are those of the sampled tokens. Each prompt is rolled
  out `num_generations` times (GRPO's group).
- **Rewards.** r1 = `attempt_reward(attempt 1)`, r2 = `attempt_reward(attempt 2)` (1.0 for the reference answer,
  else 0.1 + 0.9 x string similarity), and attempt 2 is scored r2 + alpha x (r2 - r1), alpha = `improvement_bonus`
  (0.1): the reward functions of [`~occ_hf.train.sc_reward.self_correction_reward_funcs`].
- **Loss.** One completion per rollout, `[attempt 1][turn change + question][attempt 2]`, in one forward pass; the
  question's tokens are masked out of the loss (TRL's multi-turn `tool_mask`). Advantages are per token: attempt 1's
  tokens get r1 normalised within the group, attempt 2's tokens get the shaped r2 normalised within the group
  (GRPO's `scale_rewards`). Each attempt is thus credited with its own reward, as the seed's trainer does (one
  REINFORCE term per attempt), rather than attempt 1 also receiving attempt 2's return. The surrogate (clipping,
  `loss_type`, the optional KL term `beta` against the starting model) is GRPO's, unchanged.

Not implemented: SCoRe's stage I (attempt 2 trained with a strong KL on attempt 1); `beta` applies one KL weight to
both attempts. The seed's own code asks its second question without the first answer in the context (it rewrites the
class question); this trainer conditions on it, as SCoRe does.

```python
from occ_hf.train.sc_trainer import SelfCorrectionTrainer

trainer = SelfCorrectionTrainer(model, args=OccSCConfig(...), train_dataset=rows, processing_class=processor)
trainer.train()   # rows: `prompt` (conversational, image parts), `images`, `reference` ("The object is jar.")
```

GRPO's `tools`, `environment_factory` and `rollout_func` are not arguments of this trainer: the rollout is its own.
"""

import copy

import torch
from accelerate.utils import gather
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

from .sc_config import OccSCConfig
from .sc_reward import attempt_reward, self_correction_reward_funcs


__all__ = ["SelfCorrectionTrainer"]


class SelfCorrectionTrainer(GRPOTrainer):
    r"""
    [`~trl.GRPOTrainer`] whose rollouts are two attempts at the class question, the second asked after the first
    (see the module docstring for exactly what is trained).

    Args:
        model ([`~transformers.PreTrainedModel`] or `str`): The policy, as for `GRPOTrainer`.
        args ([`OccSCConfig`]): GRPO's arguments plus `check_again_question` and `improvement_bonus`.
        train_dataset ([`~datasets.Dataset`] or [`~datasets.IterableDataset`]):
            Rows with a conversational `prompt` (with image parts), `images`, and `reference` (the expected answer).
        eval_dataset, processing_class, callbacks, optimizers, peft_config:
            As for `GRPOTrainer`; `processing_class` must be the model's processor (a VLM).
    """

    _tag_names = ["trl", "grpo", "self-correction", "occ-hf"]

    def __init__(
        self,
        model,
        args: OccSCConfig,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        callbacks=None,
        optimizers=(None, None),
        peft_config=None,
    ):
        if not isinstance(args, OccSCConfig):
            raise TypeError(
                f"SelfCorrectionTrainer needs an OccSCConfig (it holds check_again_question and improvement_bonus), "
                f"got {type(args).__name__}."
            )
        for name, dataset in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            columns = getattr(dataset, "column_names", None)
            if columns is not None and not {"prompt", "reference"} <= set(columns):
                raise ValueError(
                    f"{name} has columns {sorted(columns)}; the sc stage needs `prompt` and `reference` (build them "
                    "from occ-obman-cot's `description` rows with occ_hf.train.sc.self_correction_rows)."
                )
        super().__init__(
            model=model,
            reward_funcs=self_correction_reward_funcs(args.improvement_bonus),
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            peft_config=peft_config,
        )
        if not self._is_vlm:
            raise TypeError("SelfCorrectionTrainer trains a vision-language model: pass its processor.")
        self._turn_end_id, self._check_again_ids = self._check_again_turn_ids()
        self._rollout_rewards = None  # [N, 2] (r1, shaped r2) of the last scored generation batch, all processes

    def _check_again_turn_ids(self) -> tuple[int, list[int]]:
        """The token that ends an assistant turn, and the ids the chat template puts after it up to the start of the
        next assistant turn when the check-again question is asked."""
        turn = [
            {"role": "user", "content": [{"type": "text", "text": "?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "."}]},
        ]
        question = {"role": "user", "content": [{"type": "text", "text": self.args.check_again_question}]}
        render_kwargs = {"tokenize": False, "chat_template": self.chat_template, **self.chat_template_kwargs}
        before = self.processing_class.apply_chat_template(turn, **render_kwargs)
        after = self.processing_class.apply_chat_template(
            turn + [question], add_generation_prompt=True, **render_kwargs
        )
        before_ids = self._tokenizer(before, add_special_tokens=False)["input_ids"]
        after_ids = self._tokenizer(after, add_special_tokens=False)["input_ids"]
        ends = [index for index, token in enumerate(before_ids) if token in self.eos_token_ids]
        if after_ids[: len(before_ids)] != before_ids or not ends:
            raise ValueError(
                "The chat template does not close an assistant turn with an EOS token and then append the next turn "
                f"(rendered {before!r}, then {after!r}); the sc stage needs a ChatML-like template such as "
                "OccInternVL's, and generation_config.eos_token_id set to the end-of-turn token."
            )
        return before_ids[ends[-1]], after_ids[ends[-1] + 1 :]

    def second_attempt_prompt_ids(self, prompt_ids: list[int], first_attempt_ids: list[int]) -> list[int]:
        """
        The prompt of attempt 2: the prompt, attempt 1's tokens as sampled (closed with the end-of-turn token when it
        was cut at `max_completion_length`), then the check-again question and the start of the assistant's turn.

        Args:
            prompt_ids (`list[int]`): Attempt 1's prompt, unpadded.
            first_attempt_ids (`list[int]`): Attempt 1's tokens, unpadded.

        Returns:
            `list[int]`: the token ids attempt 2 is generated from.
        """
        ids = list(prompt_ids) + list(first_attempt_ids)
        if not first_attempt_ids or first_attempt_ids[-1] not in self.eos_token_ids:
            ids.append(self._turn_end_id)
        return ids + self._check_again_ids

    def _generate(self, prompts: list):
        # The rollout: attempt 1 from the prompt, attempt 2 from prompt + attempt 1 + question. Returns what
        # GRPOTrainer._generate returns, with the question's tokens marked 0 in `tool_mask` (not trained on).
        mode = "train" if self.model.training else "eval"
        prompts = copy.deepcopy(prompts)
        prompt_ids, images, multimodal_fields = self._tokenize_prompts(prompts)
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        first_ids, first_logprobs = self._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations)
        second_prompt_ids = [
            self.second_attempt_prompt_ids(ids, first) for ids, first in zip(prompt_ids, first_ids, strict=True)
        ]
        # Every attempt-2 prompt is its own history, so one completion each (as GRPO's multi-turn tool loop does).
        second_ids, second_logprobs = self._generate_single_turn(second_prompt_ids, images, multimodal_fields, 1)

        completion_ids, tool_mask, logprobs = [], [], [] if first_logprobs is not None else None
        for row, (prompt, second_prompt) in enumerate(zip(prompt_ids, second_prompt_ids, strict=True)):
            between = len(second_prompt) - len(prompt) - len(first_ids[row])  # turn end (if cut) + question
            completion_ids.append(second_prompt[len(prompt) :] + list(second_ids[row]))
            tool_mask.append([1] * len(first_ids[row]) + [0] * between + [1] * len(second_ids[row]))
            if logprobs is not None:
                logprobs.append(list(first_logprobs[row]) + [0.0] * between + list(second_logprobs[row]))
        first_texts = self.processing_class.batch_decode(first_ids, skip_special_tokens=True)
        second_texts = self.processing_class.batch_decode(second_ids, skip_special_tokens=True)
        completions = [
            [
                {"role": "assistant", "content": first.strip()},
                {"role": "user", "content": self.args.check_again_question},
                {"role": "assistant", "content": second.strip()},
            ]
            for first, second in zip(first_texts, second_texts, strict=True)
        ]

        device = self.accelerator.device
        attempt_lengths = torch.tensor(
            [[len(first), len(second)] for first, second in zip(first_ids, second_ids, strict=True)], device=device
        )
        attempt_lengths = self.accelerator.gather(attempt_lengths).float()  # [N, 2]
        prompt_tokens = self.accelerator.gather(torch.tensor([len(ids) for ids in prompt_ids], device=device)).sum()
        if mode == "train":
            self.state.num_input_tokens_seen += int(prompt_tokens + attempt_lengths.sum())
        self._metrics[mode]["num_tokens"] = [self.state.num_input_tokens_seen]
        self._metrics[mode]["completions/mean_length"].append(attempt_lengths.sum(dim=1).mean().item())
        self._metrics[mode]["completions/attempt_1_mean_length"].append(attempt_lengths[:, 0].mean().item())
        self._metrics[mode]["completions/attempt_2_mean_length"].append(attempt_lengths[:, 1].mean().item())
        return prompt_ids, completion_ids, tool_mask, completions, logprobs, {}, images, []

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rollout_rewards = rewards_per_func  # [N, 2]: r1, shaped r2 (gathered over processes)
        # SCoRe's self-correction figures: accuracy of each attempt, and how often attempt 2 fixes (wrong -> right)
        # or breaks (right -> wrong) attempt 1.
        right = torch.tensor(
            [
                [
                    attempt_reward(c[0]["content"], x["reference"]) == 1.0,
                    attempt_reward(c[2]["content"], x["reference"]) == 1.0,
                ]
                for c, x in zip(completions, inputs, strict=True)
            ],
            device=self.accelerator.device,
        )
        right = gather(right).float()  # [N, 2]
        mode = "train" if self.model.training else "eval"
        metrics = self._metrics[mode]
        metrics["self_correction/accuracy_attempt_1"].append(right[:, 0].mean().item())
        metrics["self_correction/accuracy_attempt_2"].append(right[:, 1].mean().item())
        metrics["self_correction/fixed"].append(((1 - right[:, 0]) * right[:, 1]).mean().item())
        metrics["self_correction/broken"].append((right[:, 0] * (1 - right[:, 1])).mean().item())
        return rewards_per_func

    def _group_advantages(self, rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
        """GRPO's advantage of one reward, as `scale_rewards` says: minus the group mean, over the group's (or the
        batch's) standard deviation; 0 where the reward is missing (NaN)."""
        grouped = rewards.view(-1, num_generations)  # [N / G, G]
        advantages = rewards - torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
        if self.scale_rewards == "group":
            std = nanstd(grouped, dim=1).repeat_interleave(num_generations) if num_generations > 1 else None
        elif self.scale_rewards == "batch":
            std = nanstd(rewards).expand_as(rewards) if rewards.numel() > 1 else None
        else:
            std = None
        if std is not None:
            advantages = advantages / (std + 1e-4)
        return torch.nan_to_num(advantages, nan=0.0)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        first = self._group_advantages(self._rollout_rewards[:, 0], num_generations)  # [N]
        second = self._group_advantages(self._rollout_rewards[:, 1], num_generations)  # [N]
        local = output["prompt_ids"].size(0)
        process_slice = slice(self.accelerator.process_index * local, (self.accelerator.process_index + 1) * local)
        first, second = first[process_slice], second[process_slice]
        tool_mask = output["tool_mask"]  # [B, C]: 1 on the attempts' tokens, 0 on the question between them
        in_second_attempt = (1 - tool_mask).cumsum(dim=1) > 0  # [B, C]
        advantages = torch.where(in_second_attempt, second.unsqueeze(1), first.unsqueeze(1)) * tool_mask
        output["advantages"] = advantages  # [B, C]; GRPO's loss takes per-token advantages as they are
        return output
