"""`unifiedviz dictionary train MODEL LAYER --data SOURCE --out DIR`: a sparse autoencoder on a layer.

Writes into DIR (the output policy's incremental folder, so `--resume` continues a stopped run):
`dictionary.safetensors` (weights, config and layer in its metadata), `metrics.json`
(reconstruction, sparsity, geometry, latents vs neurons when the data has labels),
`plots/density.png` and `checkpoints/last.ckpt`. With `--stability` a second dictionary (seed + 1,
its own shuffle, checkpoints in `checkpoints/stability/`) is trained the same way and `metrics.json`
gets `stability`: the Hungarian one-to-one matched cosine between the two dictionaries' decoder
atoms and encoder rows (mean, median, fraction above 0.9). With `--encoder MODEL` `metrics.json`
gets `monosemanticity`: the MonoSemanticity score (Pach et al. 2025) of neurons and latents, the
similarity of the images that activate a unit as seen by that independent encoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unifiedviz.cli.command import Command, ModelOptions, load_model_from, register
from unifiedviz.errors import UnifiedVizError
from unifiedviz.options import ResumeOptions, option

COMMAND = "dictionary train"


@dataclass
class DictionaryOptions(ModelOptions, ResumeOptions):
    layer: str | None = option(None, "the layer whose activations to decompose ('unifiedviz layers MODEL')",
                               positional=True)
    data: str = option("digits-train", "images: a data set name (digits-train, digits-test, ...), folder or file",
                       metavar="SOURCE")
    out: str | None = option(None, "run folder (default runs/dictionary/<layer>)", metavar="DIR")
    kind: str = option("topk", "autoencoder: topk or relu (ReLU with an L1 penalty)", choices=("topk", "relu"))
    expansion: float = option(4.0, "latents per layer feature", minimum=0.01)
    k: int = option(8, "topk: latents firing per row", minimum=1)
    l1: float = option(1e-2, "relu: L1 weight", minimum=0)
    steps: int = option(1000, "training batches", minimum=1)
    batch_size: int = option(1024, "rows per training batch", minimum=1)
    buffer_rows: int = option(32768, "rows held in memory at most (the bounded buffer)", minimum=2)
    image_batch: int = option(64, "images per forward pass of the model", minimum=1)
    lr: float = option(1e-3, "Adam learning rate", minimum=0)
    resample_every: int = option(250, "steps between dead-latent resampling (0: never)", minimum=0)
    limit: int | None = option(None, "use at most this many images", minimum=1)
    seed: int = option(0, "seed of the dictionary and the shuffle")
    stability: bool = option(False, "also train a second dictionary (seed + 1) and report the Hungarian-matched "
                                    "cosine of the two dictionaries' atoms in metrics.json")
    encoder: str | None = option(None, "an independent image encoder (a model source, e.g. builtin:digits-vit): "
                                       "adds the monosemanticity score of neurons and latents to metrics.json",
                                 metavar="MODEL")
    encoder_layer: str | None = option(None, "the encoder's layer whose per-image features are the embeddings "
                                             "(default: the layer feeding its classifier)", metavar="LAYER")

    def check(self) -> None:
        super().check()
        if not self.layer:
            raise UnifiedVizError("give LAYER (e.g. conv2; 'unifiedviz layers MODEL' lists them)")
        if self.encoder_layer and not self.encoder:
            raise UnifiedVizError("--encoder-layer needs --encoder MODEL (the independent encoder)")


@register("train")
class DictionaryTrain(Command):
    group = "dictionary"
    group_help = "sparse dictionaries (sparse autoencoders) on a layer's activations"
    help = "train a sparse autoencoder on a layer's activations"
    options = DictionaryOptions

    def run(self, opts: DictionaryOptions) -> int:
        import torch

        from unifiedviz.adapters import as_adapter
        from unifiedviz.inputs import load_inputs
        from unifiedviz.report import write_json
        from unifiedviz.report.run_folder import claim

        from .dictionaries import save_dictionary
        from .dictionaries.buffer import rows_of
        from .dictionaries.metrics import (
            collinearity,
            evaluate,
            latents_vs_neurons,
            matched_cosine,
            monosemanticity,
            per_image,
        )

        out = Path(opts.out or f"runs/dictionary/{opts.layer}")
        folder = claim(out, COMMAND, incremental=True)
        resume = opts.resume and (out / "checkpoints" / "last.ckpt").is_file()
        if not opts.resume and folder.previous is not None and not opts.force:
            raise UnifiedVizError(f"--out {str(out)!r} holds an earlier dictionary run: pass --resume or --force")
        model = load_model_from(opts)
        adapter = as_adapter(model)
        info = adapter.layer(opts.layer)
        inputs = load_inputs(opts.data, model.spec, limit=opts.limit)

        def images():
            for i in range(0, len(inputs.images), opts.image_batch):
                yield inputs.images[i:i + opts.image_batch]

        embeddings = self._embeddings(opts, len(inputs.images)) if opts.encoder else None  # refused before training
        width = info.layout.feature_width(info.shape)
        folder.begin(fresh=not resume)
        sae, module, buffer = self._train(opts, adapter, images, width, opts.seed, out / "checkpoints", resume,
                                          full=True)
        neurons, latents = [], []
        with torch.no_grad(), adapter.session([opts.layer]) as run:
            for x in images():
                r = rows_of(info.layout, run(x)[opts.layer]).float()
                n, z = per_image(sae, r, len(r) // len(x))
                neurons.append(n)
                latents.append(z)
        metrics = {"model": opts.model, "layer": opts.layer, "layout": info.describe(), "config": sae.config(),
                   "steps": module.global_step, "resampled": module.resampled, "buffer_rows": opts.buffer_rows,
                   "peak_buffer_rows": buffer.peak_rows,
                   "reconstruction": evaluate(sae, (rows_of(info.layout, adapter.capture(x, opts.layer)[opts.layer])
                                                    for x in images())),
                   "collinearity": collinearity(sae.W_dec.detach())}
        if opts.stability:
            other, seed2 = self._train(opts, adapter, images, width, opts.seed + 1, out / "checkpoints" / "stability",
                                       resume and (out / "checkpoints" / "stability" / "last.ckpt").is_file())
            metrics["stability"] = {"seeds": [opts.seed, seed2],
                                    "decoder": matched_cosine(sae.W_dec.detach(), other.W_dec.detach()),
                                    "encoder": matched_cosine(sae.W_enc.detach(), other.W_enc.detach())}
        if inputs.labels is not None:
            metrics["selectivity"] = latents_vs_neurons(torch.cat(neurons), torch.cat(latents), inputs.labels)
        if embeddings is not None:
            metrics["monosemanticity"] = {"encoder": opts.encoder, "encoder_layer": embeddings[1],
                                          **monosemanticity(torch.cat(neurons), torch.cat(latents), embeddings[0])}
        save_dictionary(sae, out / "dictionary.safetensors", layer=opts.layer, model=opts.model or "")
        write_json(out / "metrics.json", metrics)
        _density_plot(metrics["reconstruction"]["density_histogram"], out / "plots" / "density.png")
        folder.finish()
        r = metrics["reconstruction"]
        print(f"wrote {out}: explained variance {r['explained_variance']:.3f}, L0 {r['l0']:.2f}, "
              f"dead {r['dead']}/{r['latents']}")
        if "monosemanticity" in metrics:
            ms = metrics["monosemanticity"]
            print(f"monosemanticity by {opts.encoder} ({ms['encoder_layer']}): neurons {ms['neurons']['mean']:.3f}, "
                  f"latents {ms['latents']['mean']:.3f} (every image alike: {ms['all_images_alike']:.3f})")
        if "stability" in metrics:
            print(f"stability across seeds {metrics['stability']['seeds']}: matched decoder cosine "
                  f"{metrics['stability']['decoder']['mean']:.3f}")
        return 0

    @staticmethod
    def _embeddings(opts: DictionaryOptions, count: int):
        """(`[N, D]` embeddings of the run's images by the independent encoder, its layer)."""
        from unifiedviz.adapters import as_adapter
        from unifiedviz.inputs import load_inputs
        from unifiedviz.models import load_model

        from .dictionaries.metrics import default_embedding_layer, image_embeddings

        encoder = as_adapter(load_model(opts.encoder))
        layer = encoder.layer(opts.encoder_layer).name if opts.encoder_layer else default_embedding_layer(encoder)
        images = load_inputs(opts.data, encoder.model.spec, limit=opts.limit).images
        if len(images) != count:
            raise UnifiedVizError(f"--encoder {opts.encoder} reads {len(images)} images from --data {opts.data}, "
                                  f"the model {count}: give an encoder that takes the same images")
        emb = image_embeddings(encoder, layer, (images[i:i + opts.image_batch]
                                                for i in range(0, len(images), opts.image_batch)))
        return emb, layer

    @staticmethod
    def _train(opts: DictionaryOptions, adapter, images, width: int, seed: int, checkpoints: Path, resume: bool,
               *, full: bool = False):
        """One dictionary of this run's settings with `seed` (weights and shuffle): (sae, seed), or with
        `full` (sae, the Lightning module, the buffer)."""
        from .dictionaries import ActivationBuffer, SparseAutoencoder
        from .dictionaries.train import train_dictionary

        buffer = ActivationBuffer(adapter, opts.layer, images, capacity=opts.buffer_rows,
                                  batch_size=min(opts.batch_size, opts.buffer_rows // 2), seed=seed)
        sae = SparseAutoencoder(width, expansion=opts.expansion, kind=opts.kind, k=opts.k, l1=opts.l1, seed=seed)
        module = train_dictionary(sae, buffer, steps=opts.steps, lr=opts.lr, checkpoint_dir=checkpoints,
                                  resume=resume, resample_every=opts.resample_every,
                                  resample_after_rows=20 * opts.batch_size, progress=not opts.quiet, seed=seed)
        return (sae, module, buffer) if full else (sae, seed)


def _density_plot(hist: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unifiedviz.report.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    edges = hist["log10_edges"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(edges[:-1], hist["counts"], width=edges[1] - edges[0], align="edge")
    ax.set_xlabel("log10 feature density")
    ax.set_ylabel(f"latents ({hist['dead']} dead not shown)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
