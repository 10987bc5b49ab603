"""Train a label-conditioned generator against a frozen classifier with Lightning, sample it,
measure it, and write a run folder (`unifiedviz invert`)."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import UnifiedVizError
from . import losses
from .config import RESUMABLE, InversionConfig, config_dict
from .generator import ConditionedGenerator, LatentConditionedGenerator, check_output

COMMAND = "invert"
CHECKPOINT = "checkpoints/last.safetensors"
_SAMPLE_SEED = 1_000_003  # samples never share noise with training steps


def feature_layer_of(adapter, wanted: str | None = None) -> str:
    """`wanted` (checked), else the layer feeding the head: the last one before the last layer shaped like the logits."""
    from ..adapters.core import LOGITS

    if wanted:
        return adapter.layer(wanted).name
    layers = [l for l in adapter.layers() if l.name != LOGITS]
    logits_shape = adapter.layer(LOGITS).shape
    while layers and layers[-1].shape == logits_shape:
        layers.pop()
    if not layers:
        raise UnifiedVizError("the model has no layer before its logits: name one with feature_layer")
    return layers[-1].name


def step_batch(step: int, cfg: InversionConfig, num_classes: int, latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and labels of training step `step`: a function of (seed, step) only, so a resumed
    run sees exactly the batches an uninterrupted one would."""
    g = torch.Generator().manual_seed(cfg.seed * 7_919 + step)
    z = torch.randn(cfg.batch_size, latent_dim, generator=g)
    labels = torch.arange(cfg.batch_size) % num_classes
    return z, labels


def inversion_loss(adapter, x: torch.Tensor, labels: torch.Tensor, feature_layer: str, cfg,
                   codes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each weighted term and their sum ("loss") for generated images `x` conditioned on `labels`;
    with a prior's latent `codes`, their mean square ("prior", DGN-AM's L2 code decay as a loss)."""
    from ..adapters.core import LOGITS

    acts = adapter.capture(x, [feature_layer, LOGITS])
    feats, logits = acts[feature_layer], acts[LOGITS]
    terms = {
        "ce": losses.cross_entropy(logits, labels),
        "diversity": losses.cosine_diversity(feats, labels),
        "orthogonality": losses.orthogonality(feats),
        "tv": losses.total_variation(x),
        "range": losses.pixel_range(x, *adapter.model.spec.value_range),
    }
    weights = {"ce": cfg.loss_ce, "diversity": cfg.loss_diversity, "orthogonality": cfg.loss_orthogonality,
               "tv": cfg.loss_tv, "range": cfg.loss_range, "prior": cfg.loss_prior}
    if codes is not None:
        terms["prior"] = codes.pow(2).mean()
    terms["loss"] = sum(weights[k] * v for k, v in terms.items())
    return terms


def _lightning_module(generator: nn.Module, adapter, cfg, feature_layer: str, num_classes: int):
    import lightning as L

    class InversionModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.generator = generator
            object.__setattr__(self, "adapter", adapter)  # frozen, and not part of the checkpoint
            self.last: dict[str, float] = {}

        def on_fit_start(self) -> None:
            self.adapter.model.to(self.device).eval()

        def training_step(self, batch, batch_idx: int) -> torch.Tensor:
            z, labels = step_batch(self.global_step, cfg, num_classes, generator.latent_dim)
            z, labels = z.to(self.device), labels.to(self.device)
            if isinstance(self.generator, LatentConditionedGenerator):
                codes = self.generator.code(z, labels)
                x = self.generator.decode(codes)
            else:
                codes, x = None, self.generator(z, labels)
            terms = inversion_loss(self.adapter, x, labels, feature_layer, cfg, codes)
            self.last = {k: float(v.detach()) for k, v in terms.items()}
            self.log("loss", terms["loss"], prog_bar=True, on_step=True, on_epoch=False)
            self.log("ce", terms["ce"], prog_bar=True, on_step=True, on_epoch=False)
            return terms["loss"]

        def configure_optimizers(self):
            decoder = getattr(self.generator, "decoder", None)
            tuned = set() if decoder is None else {id(p) for p in decoder.parameters()}
            groups = [{"params": [p for p in self.generator.parameters() if id(p) not in tuned], "lr": cfg.lr}]
            if tuned and cfg.prior_lr > 0:
                groups.append({"params": list(decoder.parameters()), "lr": cfg.prior_lr})
            return torch.optim.Adam(groups, betas=(0.5, 0.999))

    return InversionModule()


class _Steps(torch.utils.data.Dataset):
    """A placeholder stream of step indices: each step draws its batch from (seed, global step)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(i)


def _checkpointer(path: Path, every: int):
    import lightning as L

    class Checkpoint(L.Callback):
        """Every `every` steps and at the end: the whole training state to `path` (safetensors, atomic)."""

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step % every == 0:
                trainer.save_checkpoint(path, weights_only=False)  # the whole state: resume needs it

        def on_train_end(self, trainer, pl_module) -> None:
            trainer.save_checkpoint(path, weights_only=False)  # the whole state: resume needs it

    return Checkpoint()


def new_generator(cfg, num_classes: int, shape: tuple[int, ...]) -> nn.Module:
    """The generator a config asks for: pixels, or the latent code of `cfg.prior`."""
    if not cfg.prior:
        return ConditionedGenerator(num_classes, shape, latent_dim=cfg.latent_dim, width=cfg.width)
    from ..generators import as_generator

    return LatentConditionedGenerator(num_classes, as_generator(cfg.prior), latent_dim=cfg.latent_dim,
                                      width=cfg.width, prior_name=cfg.prior).fine_tune(cfg.prior_lr > 0)


@dataclass
class Training:
    generator: nn.Module
    feature_layer: str
    steps: int  # the global step reached
    resumed_from: int  # the step the run resumed from (0: a fresh run)
    last: dict[str, float] = field(default_factory=dict)  # the last step's loss terms


def train_inversion(model, cfg: InversionConfig | None = None, *, checkpoint: str | Path | None = None,
                    resume: bool = False, progress: bool = True, generator: nn.Module | None = None,
                    callbacks: list | None = None, model_name: str = "the model") -> Training:
    """Train a conditioned generator (a new `ConditionedGenerator`, or `generator(z, labels)`) against
    the frozen classifier `model` (a source, module or Adapter). `checkpoint`: where to save the
    training state every `checkpoint_every` steps; `resume`: continue from it if it exists."""
    import lightning as L

    from ..adapters import as_adapter
    from .checkpoint import SafetensorsCheckpointIO

    cfg = cfg or InversionConfig()
    adapter = as_adapter(model)
    spec = adapter.model.spec
    if not spec.size:
        raise UnifiedVizError(f"invert needs an image classifier; {model_name} takes [B, F] vectors")
    num_classes = adapter.layer("<logits>").shape[-1]
    feature_layer = feature_layer_of(adapter, cfg.feature_layer)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if generator is None:
        generator = new_generator(cfg, num_classes, spec.shape)
    latent_dim = getattr(generator, "latent_dim", cfg.latent_dim)
    generator.latent_dim = latent_dim
    check_output(generator, latent_dim, num_classes, spec.shape, model_name)
    module = _lightning_module(generator, adapter, cfg, feature_layer, num_classes)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    cbs = list(callbacks or [])
    if ckpt is not None:
        cbs.append(_checkpointer(ckpt, cfg.checkpoint_every))
    start = ckpt if (resume and ckpt is not None and ckpt.is_file()) else None
    resumed_from = 0
    if start is not None:
        from .checkpoint import load_checkpoint_file

        resumed_from = int(load_checkpoint_file(start)["global_step"])
    trainer = L.Trainer(max_steps=cfg.steps, max_epochs=-1, accelerator=cfg.accelerator, devices=1,
                        logger=False, enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=progress, num_sanity_val_steps=0, callbacks=cbs,
                        plugins=[SafetensorsCheckpointIO()], log_every_n_steps=1)
    loader = torch.utils.data.DataLoader(_Steps(cfg.steps), batch_size=None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", ".*mid-epoch.*")
        warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")  # a frozen prior's decoder, on purpose
        trainer.fit(module, loader, ckpt_path=str(start) if start is not None else None)
    generator.eval()
    adapter.model.to("cpu")
    generator.to("cpu")
    return Training(generator, feature_layer, trainer.global_step, resumed_from, dict(module.last))


# ---------------------------------------------------------------------------- sampling and measures
@torch.no_grad()
def sample(generator: nn.Module, num_classes: int, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images of each class (clamped to [0, 1]) and their labels, class-major."""
    generator.eval()
    g = torch.Generator().manual_seed(seed + _SAMPLE_SEED)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    z = torch.randn(len(labels), generator.latent_dim, generator=g)
    return generator(z, labels).clamp(0, 1), labels


@torch.no_grad()
def read_as(model, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The class `model` (source, module or Adapter) predicts for each image."""
    from ..adapters import as_adapter

    adapter = as_adapter(model)
    return torch.cat([adapter.capture(images[i:i + batch], "<logits>")["<logits>"].argmax(1)
                      for i in range(0, len(images), batch)])


@torch.no_grad()
def diversity(model, images: torch.Tensor, labels: torch.Tensor, feature_layer: str | None = None) -> float:
    """Mean pairwise cosine similarity of same-label samples' features (lower = more diverse)."""
    from ..adapters import as_adapter

    adapter = as_adapter(model)
    layer = feature_layer_of(adapter, feature_layer)
    feats = torch.cat([adapter.capture(images[i:i + 500], layer)[layer] for i in range(0, len(images), 500)])
    return float(torch.stack([losses.cosine_diversity(feats[labels == k]) for k in labels.unique()]).mean())


# ---------------------------------------------------------------------------- generator files
def save_generator(generator: nn.Module, path: str | Path, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    from ..report.files import atomic_path

    meta = {"num_classes": generator.num_classes, "shape": list(generator.shape), "latent_dim": generator.latent_dim,
            "width": generator.width, "prior": getattr(generator, "prior_name", None), **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"unifiedviz.inversion": json.dumps(meta)})


def load_generator(path: str | Path) -> nn.Module:
    """The generator written by `unifiedviz invert` (generator.safetensors), in eval mode: a
    `ConditionedGenerator`, or a `LatentConditionedGenerator` around its prior (decoder weights included)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("unifiedviz.inversion", "null") or "null")
    if meta is None:
        raise UnifiedVizError(f"{path} is not a generator written by unifiedviz invert (no metadata)")
    if meta.get("prior"):
        from ..generators import as_generator

        gen = LatentConditionedGenerator(meta["num_classes"], as_generator(meta["prior"]), latent_dim=meta["latent_dim"],
                                         width=meta["width"], prior_name=meta["prior"])
    else:
        gen = ConditionedGenerator(meta["num_classes"], tuple(meta["shape"]), latent_dim=meta["latent_dim"],
                                   width=meta["width"])
    gen.load_state_dict(load_file(str(path)))
    return gen.eval()


# ---------------------------------------------------------------------------- the run folder
def save_class_grid(images: torch.Tensor, caption: str, path: Path, labels: list[str]) -> None:
    """A grid of one class's samples, each labelled (`labels`), with a caption line above it."""
    from ..report.images import save_labelled_grid, upscale_factor

    side = images.shape[-1]
    save_labelled_grid(images, labels, path, ncols=10, tile=side * upscale_factor(side, 64), title=caption)


def run_inversion(model: str, cfg: InversionConfig, out: str | Path, *, resume: bool = False, force: bool = False,
                  progress: bool = True, weights: str | None = None, callbacks: list | None = None,
                  load=None) -> dict:
    """Claim `out`, train (or resume), sample, measure and write: samples/class_K.png, samples.safetensors,
    generator.safetensors, metrics.json, config.json. Returns metrics.json's content."""
    from ..models import load_model
    from ..report.files import write_json
    from ..report.run_folder import claim

    if resume and force:
        raise UnifiedVizError("--resume and --force contradict each other: pass one")
    out = Path(out)
    folder = claim(out, COMMAND, incremental=True)
    settings = config_dict(cfg)
    if folder.previous is not None and not force:
        if not resume:
            raise UnifiedVizError(f"run folder {out} already exists: pass --resume to continue it or --force to start over")
        saved = out / "config.json"
        if not saved.is_file():
            raise UnifiedVizError(f"cannot resume {out}: it has no config.json; pick the run's folder with --out")
        before = json.loads(saved.read_text())
        changed = sorted(k for k in settings if k not in RESUMABLE and before.get("config", {}).get(k) != settings[k])
        if before.get("model") != model:
            changed.insert(0, "model")
        if changed:
            raise UnifiedVizError(f"cannot resume {out}: the settings differ from the run's in {', '.join(changed)}; "
                                  "use the same ones, or pass --force to start over")
    clf = load(model) if load is not None else load_model(model, weights=weights)
    from ..adapters import as_adapter

    adapter = as_adapter(clf)
    if not adapter.model.spec.size:
        raise UnifiedVizError(f"invert needs an image classifier; {model} takes [B, F] vectors")
    folder.begin(fresh=not resume)
    write_json(out / "config.json", {"model": model, "config": settings})
    run = train_inversion(adapter, cfg, checkpoint=out / CHECKPOINT, resume=resume, progress=progress,
                          callbacks=callbacks, model_name=model)
    gen = run.generator
    images, labels = sample(gen, gen.num_classes, cfg.samples_per_class, cfg.seed)
    preds = read_as(adapter, images)
    per_class = [float((preds[labels == k] == k).float().mean()) for k in range(gen.num_classes)]
    metrics = {
        "model": model, "steps": run.steps, "resumed_from": run.resumed_from, "feature_layer": run.feature_layer,
        "final_losses": run.last,
        "samples_per_class": cfg.samples_per_class,
        "accuracy": float((preds == labels).float().mean()),
        "accuracy_per_class": per_class,
        "feature_cosine_within_class": diversity(adapter, images, labels, run.feature_layer),
        "notes": "accuracy: share of the samples the inverted model reads as their conditioning label; "
                 "feature_cosine_within_class: mean pairwise cosine of same-class samples' features (lower = more diverse)",
    }
    for k in range(gen.num_classes):
        save_class_grid(images[labels == k][:100], f"class {k}: {model} reads {per_class[k]:.0%} as {k}",
                        out / "samples" / f"class_{k}.png", [f"read as {int(p)}" for p in preds[labels == k][:100]])
    from safetensors.torch import save_file

    from ..report.files import atomic_path

    with atomic_path(out / "samples.safetensors") as tmp:
        save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(tmp))
    save_generator(gen, out / "generator.safetensors", {"model": model, "steps": run.steps})
    write_json(out / "metrics.json", metrics)
    folder.finish()
    return metrics
