"""The one optimisation loop behind feature visualisation and adversarial inputs.

    param() -> images -> transforms -> adapter (hooks, early stop) -> objective -> optimiser step -> param.after_step()

Deterministic under a seed on CPU: the param's init and every transform draw come from
seeded generators, one per image when given one seed per image (then an image's draws do
not depend on its batch). Weights are frozen for the run (gradients only reach the param),
which is most of why a step costs about one bare forward+backward.

Pure: `render` computes and returns a `Result`; it writes no file (writers live in
`unifiedviz.report`, e.g. `report.visualization.write_visualization`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .adapters import Adapter, as_adapter
from .chunked import chunked, default_chunk
from .errors import UnifiedVizError
from .models.blackbox import check_optimizer
from .models.spec import device_of
from .objectives import Context, Objective
from .optimizers import Optimizer, make_optimizer
from .optimizers.base import SearchOptimizer
from .params.base import Param
from .params.seeding import RowGenerators, check_seed, is_row_seeds
from .params.space import SearchSpace, search_space
from .transforms import TRANSFORMS, Compose


@dataclass
class StepInfo:
    """What a callback sees after each step; return True from the callback to stop early.

    `step` counts from 1 within a run; `images` are the ones that step evaluated (before
    transforms), `scores` their objective `[N]`, `acts` the captured activations. `batch` is
    the index of the run's batch when `visualize` splits units into several runs (0 for a
    single `render`), and `names` the batch's image names.
    """

    step: int
    images: torch.Tensor
    scores: torch.Tensor
    acts: dict[str, torch.Tensor]
    batch: int = 0
    names: Sequence[str] = ()


@dataclass
class Result:
    """What `render` computed: images in [0, 1], per-step objective history `[steps, N]`, final scores `[N]`.

    `final` is the objective on the final images without transforms and `final_acts` the
    activations (and logits, if the objective read them) of that pass. `snapshots[s]` are
    the images after step s (`0`: the initial images). `queries[s]` is the number of model
    queries (images evaluated) per image after step s+1; for a search optimiser `history` is
    each image's best score so far. Writing files is not the engine's job:
    `visualize` returns a `Visualization` with `save()`; see `unifiedviz.report`.
    """

    images: torch.Tensor
    history: torch.Tensor
    final: torch.Tensor
    names: list[str]
    metadata: dict = field(default_factory=dict)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    final_acts: dict[str, torch.Tensor] = field(default_factory=dict)
    queries: torch.Tensor | None = None


def render(
    model: nn.Module | Adapter,
    objective: Objective,
    param: Param,
    *,
    steps: int = 256,
    optimizer: str | Optimizer = "adam",
    lr: float = 0.05,
    transforms: str | Compose | None = "standard",
    seed: int | Sequence[int] = 0,
    names: Sequence[str] | None = None,
    snapshot_steps: Sequence[int] = (),
    callback: Callable[[StepInfo], bool | None] | None = None,
    stop_early: bool = True,
    progress: bool = True,
    budget: int | None = None,
    chunk: int | None = None,
) -> Result:
    """Optimise `param` so `objective` rises; return the images, history and final scores. Writes nothing.

    `seed` seeds the transforms' draws (and a gradient-free optimiser's proposals): an int
    gives one generator for the batch; a sequence of ints, one per image, gives each image
    its own stream (`RowGenerators`), so its draws do not depend on the other images. Build
    the param with the same per-image seeds to make its initialisation per-image too.
    `snapshot_steps` keeps the images after those steps (0: before the first).
    `callback(StepInfo)` runs after every step; returning True stops the run there.

    `budget`: model queries (images evaluated) allowed per image; the run stops before a step
    that would exceed it, and `steps` no longer limits it. A `SearchOptimizer` (protes,
    uniform-search, nevergrad) searches the param's discrete space (`params.space`): each
    step scores its k candidates per image in one batched forward (transforms drawn per
    candidate block from the images' own streams), NaN scores rank last (counted in
    `metadata["nan_candidates"]`), and the param shows each image's best. The progress bar
    then counts queries and shows the best score (mean over images).

    `chunk`: a gradient step runs the model on at most this many images at a time (`chunked`:
    the same gradients, a smaller working set); None: 8 on the CPU, the whole batch on a GPU;
    0: never split.
    """
    adapter = as_adapter(model)
    if steps < 1:
        raise UnifiedVizError(f"steps must be at least 1, got {steps}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise UnifiedVizError(f"budget must be a positive number of queries per image, got {budget!r}")
    device = device_of(adapter.model)
    param = param.to(device)
    chain = _transforms(transforms, adapter)
    if is_row_seeds(seed):
        generator = RowGenerators(seed)
    else:
        generator = torch.Generator(device="cpu").manual_seed(check_seed(seed))
    names = list(names) if names is not None else None
    opt = make_optimizer(optimizer, lr)
    check_optimizer(adapter.model, opt)  # a black box has no gradient: refuse adam & co in one line
    searching = isinstance(opt, SearchOptimizer)
    space = search_space(param) if searching else None
    if not searching and isinstance(param, SearchSpace):
        raise UnifiedVizError(f"the {type(param).__name__} parameterisation is searched, not differentiated: "
                              "use --optimizer protes, uniform-search or nevergrad")
    if budget is not None and budget < opt.queries_per_step():
        raise UnifiedVizError(f"budget {budget} is smaller than one step's queries ({opt.queries_per_step()} per "
                              f"image for {type(opt).__name__}): give --budget {opt.queries_per_step()} or more")
    if searching:
        opt.setup_space(space, generator, budget if budget is not None else steps * opt.queries_per_step())
    else:
        trainable = [p for p in param.parameters() if p.requires_grad]
        if not trainable:
            raise UnifiedVizError("the parameterisation has no trainable tensors: nothing to optimise")
        opt.setup(trainable, steps, generator)
    layers = objective.layers
    history: list[torch.Tensor] = []
    snapshots: dict[int, torch.Tensor] = {}
    last: dict = {}
    started = time.perf_counter()
    if 0 in snapshot_steps:
        with torch.no_grad():
            snapshots[0] = param().detach().cpu()
    used_queries, nan_candidates = 0, 0
    queries: list[int] = []
    with adapter.session(layers, stop_early=stop_early) as whole_batch_run:
        run = chunked(whole_batch_run, default_chunk(device) if chunk is None else chunk)

        def evaluate() -> torch.Tensor:
            nonlocal used_queries
            images = param()
            if isinstance(generator, RowGenerators) and images.shape[0] != len(generator):
                raise UnifiedVizError(f"got {len(generator)} seeds for {images.shape[0]} images: "
                                      "give one seed per image (or one int)")
            x = chain(images, generator) if chain is not None else images
            acts = run(x)
            scores = objective(Context(acts, images))
            last.update(images=images, acts=acts)
            used_queries += 1
            return scores if opt.needs_grad else _nan_last(scores)

        def score(indices: torch.Tensor) -> torch.Tensor:
            """Scores `[N, k]` of candidates `[N, k, dims]`: decoded and run as one batch, candidate-major."""
            nonlocal used_queries
            n, k = indices.shape[:2]
            images = space.images(indices.transpose(0, 1).reshape(n * k, -1).to(device))
            blocks = [images[j * n : (j + 1) * n] for j in range(k)]
            x = torch.cat([chain(b, generator) for b in blocks]) if chain is not None else images
            acts = run(x)
            scores = torch.stack([
                objective(Context({name: _rows(a, j, n) for name, a in acts.items()}, blocks[j])) for j in range(k)
            ], 1)
            last.update(images=blocks[-1], acts={name: _rows(a, k - 1, n) for name, a in acts.items()})
            used_queries += k
            return _nan_last(scores)

        def _nan_last(scores: torch.Tensor) -> torch.Tensor:
            nonlocal nan_candidates
            nan = torch.isnan(scores)
            nan_candidates += int(nan.sum())
            return scores.masked_fill(nan, -float("inf"))

        limit = steps if budget is None else None
        bar = tqdm(total=budget if budget is not None else steps, disable=not progress, leave=False,
                   desc="render", unit="query" if budget is not None else "step")
        step = 0
        while limit is None or step < limit:
            if budget is not None and used_queries + opt.queries_per_step() > budget:
                break
            step += 1
            before = used_queries
            with torch.enable_grad() if opt.needs_grad else torch.no_grad():
                scores = opt.step(score if searching else evaluate)
            if opt.needs_grad and not torch.isfinite(scores).all():
                raise UnifiedVizError(
                    f"the objective became NaN/inf at step {step}: lower the learning rate or add regularisation"
                )
            if searching:
                space.assign(opt.best_indices)
            else:
                param.after_step(gradient=opt.needs_grad)
            history.append(scores.detach().cpu())
            queries.append(used_queries)
            if step in snapshot_steps:
                with torch.no_grad():
                    snapshots[step] = param().detach().cpu()
            if progress:
                bar.update(used_queries - before if budget is not None else 1)
                if not opt.needs_grad:  # gradient-free: the best so far and the queries spent
                    bar.set_postfix(best=f"{scores.mean().item():.3g}", queries=used_queries)
                else:
                    bar.set_postfix(objective=f"{scores.mean().item():.3g}")
            if callback is not None and callback(
                StepInfo(step, last["images"], scores.detach(), last["acts"], names=names or ())
            ):
                break
        bar.close()
        used = step
        with torch.no_grad():
            images = param().detach()
            final_acts = run(images)
            final = objective(Context(final_acts, images)).detach().cpu()
    n = images.shape[0]
    return Result(
        images=images.cpu(),
        history=torch.stack(history),
        final=final,
        names=names if names is not None else [objective.name] * n,
        metadata={
            "model": adapter.model.source,
            "objective": objective.name,
            "param": type(param).__name__,
            "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
            "lr": lr,
            "steps": used,
            "seed": seed if isinstance(seed, int) else list(seed),
            "transforms": None if chain is None else _describe(chain),
            "seconds": round(time.perf_counter() - started, 3),
            "budget": budget,
            "queries": used_queries,
            "queries_total": used_queries * n,
            "nan_candidates": nan_candidates,
        },
        snapshots=snapshots,
        final_acts={k: v.detach().cpu() for k, v in final_acts.items() if v is not None},
        queries=torch.tensor(queries),
    )


def _rows(acts: torch.Tensor | None, block: int, n: int) -> torch.Tensor | None:
    """Candidate block `block`'s rows of a candidate-major batch of activations."""
    return None if acts is None else acts[block * n : (block + 1) * n]


def _describe(chain: nn.Module) -> str:
    parts = getattr(chain, "transforms", [chain])
    return " > ".join(type(t).__name__ for t in parts)


def _transforms(transforms, adapter: Adapter) -> nn.Module | None:
    """A preset's chain for the model (`TRANSFORMS`, e.g. 'standard', 'none'), a module as given, or None."""
    if transforms is None or isinstance(transforms, nn.Module):
        return transforms
    return TRANSFORMS.get(transforms)(adapter.model.spec)
