"""PyTorch Lightning with lossopt against torch.optim, in float64: a small
classifier whose ``configure_optimizers`` returns weight-decay param groups and
a OneCycleLR that cycles Adam's beta1, trained with gradient clipping and
gradient accumulation, and resumed from checkpoints of either optimizer."""

import lightning.pytorch as L
import pytest
import torch
import torch.nn.functional as F

from lossopt import optim

D = torch.float64
FEATURES, CLASSES, SAMPLES, BATCH = 6, 3, 32, 4
ACCUMULATE, EPOCHS = 2, 2
STEPS = SAMPLES // BATCH // ACCUMULATE * EPOCHS  # optimizer steps in the whole run
TOLERANCE = {"rtol": 0, "atol": 1e-10}
CLIP = 0.05  # below most steps' gradient norm, so clipping acts
ADAMW = {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-8}


class Classifier(L.LightningModule):
    def __init__(self, optimizer: str = "lossopt", fused: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 16),
            torch.nn.LayerNorm(16),
            torch.nn.Tanh(),
            torch.nn.Linear(16, CLASSES),
        )
        self.kind, self.fused = optimizer, fused
        self.losses: list[float] = []
        self.gradient_norms: list[float] = []
        self.beta1s: list[float] = []

    def on_before_optimizer_step(self, optimizer):
        # Lightning clips right after this hook: the norm before clipping.
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.parameters()])
        self.gradient_norms.append(norm.item())
        self.beta1s.append(optimizer.param_groups[0]["betas"][0])

    def training_step(self, batch, batch_index):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        # nanoGPT's rule: matrices decay, biases and LayerNorm gains do not.
        groups = [
            {"params": [p for p in self.parameters() if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in self.parameters() if p.dim() < 2], "weight_decay": 0.0},
        ]
        if self.kind == "lossopt":
            opt = optim.AdamW(groups, fused=self.fused, **ADAMW)
        else:
            opt = torch.optim.AdamW(groups, **ADAMW)
        # cycle_momentum (the default) moves Adam's beta1 between 0.85 and 0.95.
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=STEPS)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _loader():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, FEATURES, generator=g, dtype=D)
    y = torch.randint(0, CLASSES, (SAMPLES,), generator=g)
    # Not shuffled: Lightning keeps no RNG state in a checkpoint, so a shuffled
    # order after a resume would depend on the process, not on the run.
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)


def _fit(module, root, *, epochs=EPOCHS, resume=None):
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision="64-true",
        max_epochs=epochs,
        accumulate_grad_batches=ACCUMULATE,
        gradient_clip_val=CLIP,
        gradient_clip_algorithm="norm",
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=_loader(), ckpt_path=resume)
    return trainer


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """The control: torch.optim.AdamW, the whole run without interruption."""
    module = Classifier("torch")
    trainer = _fit(module, tmp_path_factory.mktemp("torch"))
    return module, trainer


def _assert_same_run(ours, theirs):
    (module, trainer), (reference, reference_trainer) = ours, theirs
    assert trainer.global_step == reference_trainer.global_step == STEPS
    torch.testing.assert_close(
        torch.tensor(module.losses, dtype=D),
        torch.tensor(reference.losses[-len(module.losses) :], dtype=D),
        **TOLERANCE,
    )
    for (name, p), q in zip(module.named_parameters(), reference.parameters(), strict=True):
        assert p.dtype == q.dtype == D
        torch.testing.assert_close(p, q, **TOLERANCE, msg=name)
    opt, reference_opt = trainer.optimizers[0], reference_trainer.optimizers[0]
    for group, reference_group in zip(opt.param_groups, reference_opt.param_groups, strict=True):
        for key in ("lr", "betas", "weight_decay"):
            assert group[key] == pytest.approx(reference_group[key], rel=0, abs=1e-15), key
    mine, reference_state = opt.state_dict()["state"], reference_opt.state_dict()["state"]
    assert mine.keys() == reference_state.keys()
    for index, state in reference_state.items():
        for slot, value in state.items():
            torch.testing.assert_close(
                torch.as_tensor(mine[index][slot], dtype=D),
                torch.as_tensor(value, dtype=D),
                **TOLERANCE,
                msg=f"{slot} of parameter {index}",
            )


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_training_matches_torch(tmp_path, torch_run, fused):
    module = Classifier("lossopt", fused=fused)
    trainer = _fit(module, tmp_path)
    opt = trainer.optimizers[0]
    assert isinstance(opt, optim.AdamW) and opt.fused == fused
    assert len(module.losses) == SAMPLES // BATCH * EPOCHS  # two batches per step
    assert len(module.gradient_norms) == STEPS and max(module.gradient_norms) > CLIP
    # The schedule cycled beta1 down from 0.95 and back.
    assert module.beta1s[0] == pytest.approx(0.95) == module.beta1s[-1]
    assert min(module.beta1s) < 0.9
    _assert_same_run((module, trainer), torch_run)


RESUMES = [
    ("lossopt", "lossopt"),
    ("torch", "lossopt"),
    ("lossopt", "torch"),
    ("torch", "lossopt-fused"),
]


@pytest.mark.parametrize("first,second", RESUMES, ids=["->".join(r) for r in RESUMES])
def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path, torch_run, first, second):
    def module(name):
        return Classifier(name.removesuffix("-fused"), fused=name.endswith("-fused"))

    interrupted = _fit(module(first), tmp_path, epochs=1)
    checkpoint = tmp_path / "epoch-1.ckpt"
    interrupted.save_checkpoint(checkpoint)

    resumed = module(second)
    trainer = _fit(resumed, tmp_path, resume=str(checkpoint))
    expected = optim.AdamW if second.startswith("lossopt") else torch.optim.AdamW
    assert type(trainer.optimizers[0]) is expected
    assert len(resumed.losses) == SAMPLES // BATCH * (EPOCHS - 1)
    _assert_same_run((resumed, trainer), torch_run)
