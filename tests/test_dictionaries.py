"""Sparse dictionaries: toy model of superposition, the bounded buffer, metrics, files, resume."""
from __future__ import annotations

import pytest
import torch

from superposition.dictionaries import (
    ActivationBuffer,
    SparseAutoencoder,
    load_dictionary,
    rows_of,
    save_dictionary,
)
from superposition.dictionaries.metrics import (
    best_match,
    collinearity,
    default_embedding_layer,
    evaluate,
    latents_vs_neurons,
    matched_cosine,
    monosemanticity,
    monosemanticity_scores,
)
from superposition.dictionaries.toy import ToyFeatures
from superposition.dictionaries.train import train_dictionary
from unifiedviz.adapters import Adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.builtin import build_builtin

N_FEATURES, DIM = 32, 16


def Toy(seed: int = 0, batch: int = 256) -> ToyFeatures:
    return ToyFeatures(N_FEATURES, DIM, seed=seed, batch=batch)


@pytest.mark.parametrize("kind,l1", [("topk", 0.0), ("relu", 0.1)])
def test_sae_recovers_planted_features_that_neurons_do_not(kind, l1, one_thread):
    toy = Toy()
    sae = SparseAutoencoder(DIM, expansion=2, kind=kind, k=3, l1=l1, seed=0)
    train_dictionary(sae, toy, steps=1500, lr=3e-3, progress=False, resample_every=250, resample_after_rows=20000)
    recovered = best_match(toy.features, sae.W_dec.detach())
    neurons = best_match(toy.features, torch.eye(DIM))
    assert recovered.mean() > 0.9, recovered
    assert neurons.mean() < 0.6, neurons
    m = evaluate(sae, [toy.rows(2048) for _ in range(2)])
    assert m["explained_variance"] > 0.8 and m["rows"] == 4096
    assert 0 < m["l0"] <= (3 if kind == "topk" else 32)


def test_topk_fires_at_most_k_and_resampling_revives_dead_latents(one_thread):
    sae = SparseAutoencoder(8, expansion=4, kind="topk", k=2, seed=1)
    x = torch.randn(64, 8)
    sae.fit_normalisation(x)
    z = sae.encode(x)
    assert ((z > 0).sum(1) <= 2).all() and (z >= 0).all()
    sae.loss(x[:4])
    dead = sae.dead(4)
    assert dead.sum() >= 32 - 8  # 4 rows fire at most 8 of the 32 latents
    before = sae.W_dec[dead].clone()
    assert sae.resample(x, dead) == int(dead.sum())
    assert not torch.allclose(sae.W_dec[dead], before)
    assert (sae.since_fired[dead] == 0).all()
    with pytest.raises(UnifiedVizError, match="k=40 must be between 1"):
        SparseAutoencoder(8, expansion=4, k=40)


def test_metrics_on_known_dictionaries():
    eye = torch.eye(4)
    assert collinearity(eye)["max_abs_cos"] == pytest.approx(0.0)
    dup = torch.tensor([[1.0, 0], [1.0, 0.01], [0, 1.0]])
    assert collinearity(dup)["max_abs_cos"] > 0.99
    perm = eye[[2, 0, 3, 1]] * torch.tensor([[1.0], [2.0], [3.0], [0.5]])  # permuted and rescaled
    assert matched_cosine(eye, perm)["mean"] == pytest.approx(1.0)
    assert matched_cosine(eye, torch.tensor([[1.0, 1, 0, 0]] * 4))["mean"] < 0.75
    # one unit per class vs one unit firing for every class
    labels = torch.arange(4).repeat(5)
    mono = torch.nn.functional.one_hot(labels, 4).float()
    poly = torch.ones(20, 1)
    out = latents_vs_neurons(poly, mono, labels)
    assert out["latents"]["classes_per_unit_mean"] == 1.0
    assert out["neurons"]["classes_per_unit_mean"] == 4.0


def _images(n_batches: int, size: int = 32, seed: int = 0):
    def passes():
        g = torch.Generator().manual_seed(seed)
        for _ in range(n_batches):
            yield torch.rand(8, 1, size, size, generator=g)
    return passes


@pytest.mark.parametrize("model,layer,width,per_image", [("digits-cnn", "conv2", 32, 256),
                                                         ("digits-vit", "blocks.1", 64, 64),
                                                         ("digits-cnn", "fc", None, 1)])
def test_buffer_streams_rows_bounded(model, layer, width, per_image, one_thread):
    torch.manual_seed(0)
    adapter = Adapter(build_builtin(model, load_weights=False))
    info = adapter.layer(layer)
    width = width or info.layout.feature_width(info.shape)
    buf = ActivationBuffer(adapter, layer, _images(4), capacity=1024, batch_size=128)
    it = iter(buf)
    batches = [next(it) for _ in range(20)]  # 2560 rows: more than the buffer holds
    assert all(b.shape == (128, width) for b in batches)
    assert buf.peak_rows < 1024 + 8 * per_image  # capacity plus one model batch
    with torch.no_grad():
        t = adapter.capture(torch.rand(2, 1, 32, 32), layer)[layer]
    assert rows_of(info.layout, t).shape == (2 * per_image, width)


def test_buffer_refuses_unreadable_layer():
    adapter = Adapter(build_builtin("digits-vit", load_weights=False))
    with pytest.raises(UnifiedVizError, match="dictionaries read conv, sequence, token or vector layers"):
        ActivationBuffer(adapter, "blocks.0.attn.attn_drop", _images(1))


def test_save_load_and_resume(tmp_path, one_thread):
    toy = Toy(seed=3)
    sae = SparseAutoencoder(DIM, expansion=2, kind="topk", k=3, seed=0)
    train_dictionary(sae, toy, steps=30, progress=False, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=10)
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    w30 = sae.W_dec.detach().clone()
    module = train_dictionary(sae, toy, steps=50, progress=False, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert module.global_step == 50  # continued from 30, not restarted
    assert not torch.allclose(sae.W_dec, w30)
    save_dictionary(sae, tmp_path / "d.safetensors", layer="fc")
    back, meta = load_dictionary(tmp_path / "d.safetensors")
    assert meta["layer"] == "fc" and back.n_latents == 32 and back.k == 3
    x = toy.rows(16)
    torch.testing.assert_close(back.encode(x), sae.encode(x))
    with pytest.raises(UnifiedVizError, match="not found"):
        load_dictionary(tmp_path / "missing.safetensors")


def test_monosemanticity_score_by_hand():
    # 4 images: embeddings at 0, 90, 45 and 180 degrees; cosines 12: 0, 13: .707, 14: -1, 23: .707, 24: 0, 34: -.707
    emb = torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0]])
    acts = torch.tensor([[1.0, 7.0, 0.0], [3.0, 7.0, 0.0], [2.0, 7.0, 0.0], [5.0, 7.0, 1.0]])
    ms = monosemanticity_scores(acts, emb)
    # unit 0 scaled to [0, .5, .25, 1]: pairs (2,3) .125 * .707, (2,4) .5 * 0, (3,4) .25 * -.707
    expected = (0.125 * 2 ** -0.5 - 0.25 * 2 ** -0.5) / (0.125 + 0.5 + 0.25)
    assert float(ms[0]) == pytest.approx(expected, abs=1e-9)  # -0.10102
    assert torch.isnan(ms[1]) and torch.isnan(ms[2])  # constant; fires on one image only: no weighted pair
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]  # the paper's double loop, for unit 0
    a = (acts[:, 0] - 1) / 4
    cos = torch.nn.functional.cosine_similarity
    loop = sum(a[i] * a[j] * cos(emb[i], emb[j], dim=0) for i, j in pairs) / sum(a[i] * a[j] for i, j in pairs)
    assert float(ms[0]) == pytest.approx(float(loop), abs=1e-6)


def test_monosemanticity_a_one_class_unit_beats_a_random_one():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(50)
    emb = 5 * torch.nn.functional.one_hot(labels, 16).float() + 0.3 * torch.randn(200, 16, generator=gen)
    one_class = (labels == 0) * (0.5 + 0.5 * torch.rand(200, generator=gen))
    random_images = (torch.rand(200, generator=gen) < 0.25) * (0.5 + 0.5 * torch.rand(200, generator=gen))
    out = monosemanticity(random_images[:, None], one_class[:, None], emb)
    assert out["latents"]["mean"] > 0.9 and out["neurons"]["mean"] < 0.5, out
    assert out["latents"]["dead"] == 0 and out["latents"]["units"] == 1
    # random images score about what weighting every image alike scores (the mean pairwise cosine, ~1/4 here)
    assert 0.15 < out["all_images_alike"] < 0.35 and abs(out["neurons"]["mean"] - out["all_images_alike"]) < 0.1


def test_default_embedding_layer_feeds_the_head():
    from unifiedviz.adapters import as_adapter
    from unifiedviz.models import load_model

    assert default_embedding_layer(as_adapter(load_model("builtin:digits-vit"))) == "head_drop"
    assert default_embedding_layer(as_adapter(load_model("builtin:digits-cnn"))) == "dropout"
