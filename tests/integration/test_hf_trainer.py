"""Hugging Face transformers' Trainer with lossopt against torch.optim: a tiny
GPT-2 built from a config (no downloads), in float64, trained side by side.

The model's own loss upcasts the logits to float32 (transformers'
``ForCausalLMLoss``), so every run here computes its loss in ``compute_loss``,
in float64: torch's ``F.cross_entropy`` of the logits is the control, and
lossopt's losses are checked against it.
"""

import os

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch.autograd.function import BackwardCFunction

from lossopt import _policy, losses, optim

# conftest.py keeps the Hub offline; this module must never reach it.
assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"

D = torch.float64
VOCAB, SEQUENCE, SAMPLES, BATCH, ACCUMULATE = 64, 8, 8, 2, 2
STEPS = 6  # three epochs of two steps: a resume halfway lands mid-epoch
TOLERANCE = {"rtol": 0, "atol": 1e-10}
ADAMW = {"lr": 0.01, "betas": (0.9, 0.95), "eps": 1e-8}


def _model() -> torch.nn.Module:
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=SEQUENCE,
        n_embd=32,
        # One block has every kind of GPT-2 parameter (embeddings, attention,
        # MLP, LayerNorms, the tied head); a second would only lengthen
        # fused=True's compilation (its graphs unroll over the parameters).
        n_layer=1,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,  # GPT-2's own ids lie outside this vocabulary
        eos_token_id=0,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


def _dataset() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (SAMPLES, SEQUENCE), generator=g)
    return [{"input_ids": row, "labels": row.clone()} for row in tokens]


class LossTrainer(transformers.Trainer):
    """A Trainer whose loss is next-token cross-entropy computed in float64 by
    ``loss``: 'torch' (F.cross_entropy of the logits), 'cross_entropy'
    (lossopt's, on the (B, T, V) logits) or 'linear_cross_entropy' (lossopt's,
    on the hidden states and the tied lm_head weight: no logits at all)."""

    def __init__(self, *args, loss: str = "torch", **kwargs):
        super().__init__(*args, **kwargs)
        self.loss = loss
        self.losses: list[float] = []
        self.custom_backward: set[bool] = set()
        self.reductions: set[str] = set()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        hidden = model.transformer(input_ids=inputs["input_ids"]).last_hidden_state[:, :-1]
        target = inputs["labels"][:, 1:]
        head = model.get_output_embeddings()
        # transformers' own convention: with gradient accumulation, Trainer
        # passes the label count of all the step's micro-batches and expects
        # the sum over this one divided by it (the mean otherwise).
        reduction = "mean" if num_items_in_batch is None else "sum"
        self.reductions.add(reduction)
        if self.loss == "linear_cross_entropy":
            loss = losses.linear_cross_entropy(hidden, head.weight, target, reduction=reduction)
        elif self.loss == "cross_entropy":
            loss = losses.cross_entropy(head(hidden), target, reduction=reduction, dim=-1)
        else:
            logits = head(hidden).flatten(0, 1)
            loss = F.cross_entropy(logits, target.flatten(), reduction=reduction)
        # A custom autograd Function (lossopt's own path), or torch's own node.
        self.custom_backward.add(isinstance(loss.grad_fn, BackwardCFunction))
        if num_items_in_batch is not None:
            loss = loss / num_items_in_batch
        self.losses.append(loss.item())
        return loss


class StopAt(transformers.TrainerCallback):
    """Ends training after ``step`` steps, as an interruption would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _arguments(out, **overrides) -> "transformers.TrainingArguments":
    options = dict(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=ACCUMULATE,
        learning_rate=ADAMW["lr"],
        adam_beta1=ADAMW["betas"][0],
        adam_beta2=ADAMW["betas"][1],
        weight_decay=0.1,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        warmup_steps=2,
        seed=0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    options.update(overrides)
    return transformers.TrainingArguments(**options)


def _train(out, *, loss="torch", resume=None, args=None, model=None, **trainer_kwargs):
    trainer = LossTrainer(
        model=model or _model(),
        args=args or _arguments(out),
        train_dataset=_dataset(),
        loss=loss,
        **trainer_kwargs,
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def _decay_groups(model, weight_decay=0.1):
    """Trainer's own rule for GPT-2: matrices decay; biases and LayerNorms do not."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _assert_same_run(ours, theirs):
    assert len(ours.losses) == len(theirs.losses) == STEPS * ACCUMULATE
    torch.testing.assert_close(
        torch.tensor(ours.losses, dtype=D), torch.tensor(theirs.losses, dtype=D), **TOLERANCE
    )
    mine, reference = ours.model.state_dict(), theirs.model.state_dict()
    assert mine.keys() == reference.keys()
    for name, value in mine.items():
        assert value.dtype == reference[name].dtype == D or not value.is_floating_point()
        torch.testing.assert_close(value, reference[name], **TOLERANCE, msg=name)


def _assert_same_optimizer_state(ours, theirs):
    """Step counts and moments equal, so a checkpoint of either is the same."""
    mine = ours.optimizer.state_dict()["state"]
    reference = theirs.optimizer.state_dict()["state"]
    assert mine.keys() == reference.keys()
    for index, state in reference.items():
        for slot, value in state.items():
            torch.testing.assert_close(
                torch.as_tensor(mine[index][slot], dtype=D),
                torch.as_tensor(value, dtype=D),
                **TOLERANCE,
                msg=f"{slot} of parameter {index}",
            )


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """The control: torch.optim.AdamW built by Trainer, the loss by torch."""
    out = tmp_path_factory.mktemp("torch")
    return _train(out, optimizer_cls_and_kwargs=(torch.optim.AdamW, dict(ADAMW)))


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_optimizers_argument_matches_torch(tmp_path, torch_run, fused):
    # The groups and schedule Trainer builds itself for the control.
    model = _model()
    opt = optim.AdamW(_decay_groups(model), fused=fused, **ADAMW)
    schedule = transformers.get_linear_schedule_with_warmup(opt, 2, STEPS)
    ours = _train(tmp_path, model=model, optimizers=(opt, schedule))
    assert ours.optimizer.optimizer is opt and opt.fused == fused
    _assert_same_run(ours, torch_run)
    _assert_same_optimizer_state(ours, torch_run)
    assert schedule.get_last_lr() == torch_run.lr_scheduler.get_last_lr()


def test_optimizer_cls_and_kwargs_matches_torch(tmp_path, torch_run):
    ours = _train(tmp_path, optimizer_cls_and_kwargs=(optim.AdamW, dict(ADAMW)))
    assert isinstance(ours.optimizer.optimizer, optim.AdamW)
    assert [g["weight_decay"] for g in ours.optimizer.param_groups] == [0.1, 0.0]
    _assert_same_run(ours, torch_run)
    _assert_same_optimizer_state(ours, torch_run)


CLASSES = {"lossopt": optim.AdamW, "torch": torch.optim.AdamW}
HALFWAY = STEPS // 2


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Each optimizer's checkpoint after HALFWAY steps of the same run,
    interrupted there: its schedule still spans STEPS."""
    made = {}

    def checkpoint(kind):
        if kind not in made:
            out = tmp_path_factory.mktemp(f"interrupted-{kind}")
            _train(
                out,
                args=_arguments(out, save_strategy="steps", save_steps=HALFWAY),
                optimizer_cls_and_kwargs=(CLASSES[kind], dict(ADAMW)),
                callbacks=[StopAt(HALFWAY)],
            )
            made[kind] = out / f"checkpoint-{HALFWAY}"
            assert (made[kind] / "optimizer.pt").is_file()
        return made[kind]

    return checkpoint


RESUMES = [("lossopt", "lossopt"), ("torch", "lossopt"), ("lossopt", "torch")]


@pytest.mark.parametrize("first,second", RESUMES, ids=["->".join(r) for r in RESUMES])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(
    tmp_path, torch_run, checkpoints, first, second
):
    resumed = _train(
        tmp_path,
        resume=str(checkpoints(first)),
        optimizer_cls_and_kwargs=(CLASSES[second], dict(ADAMW)),
    )
    assert isinstance(resumed.optimizer.optimizer, CLASSES[second])
    assert resumed.state.global_step == STEPS
    assert len(resumed.losses) == (STEPS - HALFWAY) * ACCUMULATE  # one per micro-batch
    torch.testing.assert_close(
        torch.tensor(resumed.losses, dtype=D),
        torch.tensor(torch_run.losses[HALFWAY * ACCUMULATE :], dtype=D),
        **TOLERANCE,
    )
    for name, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, torch_run.model.state_dict()[name], **TOLERANCE)
    _assert_same_optimizer_state(resumed, torch_run)


@pytest.mark.parametrize("kernel", ["torch kernel", "lossopt kernel"])
@pytest.mark.parametrize("loss", ["cross_entropy", "linear_cross_entropy"])
def test_compute_loss_with_lossopt_losses_matches_torch_cross_entropy(
    tmp_path, torch_run, monkeypatch, loss, kernel
):
    # These logits are far below the size where lossopt's losses leave torch's
    # kernel for their own one-pass path; a crossover of 0 forces that path.
    crossover = 0 if kernel == "lossopt kernel" else float("inf")
    monkeypatch.setitem(_policy.LOSS_CROSSOVER, loss, {"cpu": crossover})
    ours = _train(tmp_path, loss=loss, optimizer_cls_and_kwargs=(torch.optim.AdamW, dict(ADAMW)))
    _assert_same_run(ours, torch_run)
    assert ours.custom_backward == {kernel == "lossopt kernel"}
    assert ours.reductions == {"sum"}  # Trainer passed num_items_in_batch
