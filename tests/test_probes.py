"""Concept probes: metrics equal hand-computed values; every probe kind finds a planted direction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unifiedviz.adapters import ConvLayout, VectorLayout
from unifiedviz.errors import UnifiedVizError
from unifiedviz.probes import (
    PROBES,
    Acts,
    Probe,
    accuracy,
    augmentation_robustness,
    cosine,
    cured_direction,
    fit_probe,
    hard_accuracy,
    iou,
    localisation_maps,
    pointing_game,
    segmentation_score,
    spurious_probe,
    tcav_score,
)
from unifiedviz.probes.tcav import directional_derivatives, welch_p

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- metrics on small cases
def test_accuracy_and_hard_accuracy_by_hand():
    assert accuracy([1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    # hard positives predicted [1, 0] (1 right), hard negatives [1, 1, 0] (1 right): 2 of 5
    assert hard_accuracy([1, 0], [1, 1, 0]) == pytest.approx(2 / 5)
    with pytest.raises(UnifiedVizError, match="as many predictions"):
        accuracy([1, 0], [1])


def test_iou_and_pointing_game_by_hand():
    m = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])  # normalised: 0, .25, .5, 1 -> >= .5: bottom row
    mask = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    assert iou(m, mask, 0.5)[0] == pytest.approx(1 / 2)  # inter 1, union 2
    assert iou(m, mask, 0.9)[0] == pytest.approx(1.0)
    assert pointing_game(m, mask)[0] == 1.0
    assert pointing_game(m, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))[0] == 0.0
    s = segmentation_score(torch.cat([m, m]), torch.cat([mask, 1 - mask]))
    # second: mask = 3 cells {0,1,2}, pred {2,3}: inter 1, union 4
    assert s["iou"] == pytest.approx((0.5 + 0.25) / 2) and s["pointing_game"] == 0.5
    with pytest.raises(UnifiedVizError, match="upsample"):
        segmentation_score(m, torch.zeros(1, 3, 3))


def test_cosine_and_cured_direction():
    assert cosine([1, 0], [1, 1]) == pytest.approx(1 / np.sqrt(2))
    cav = Probe("logistic", np.array([1.0, 1.0]) / np.sqrt(2))
    spur = Probe("logistic", np.array([1.0, 0.0]))
    cured = cured_direction(cav, spur)
    np.testing.assert_allclose(cured.direction, [0.0, 1.0], atol=1e-12)
    assert cosine(cured, spur) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(UnifiedVizError, match="one layer"):
        cosine([1, 0], [1, 0, 0])


def test_tcav_score_and_directional_derivative_by_hand():
    assert tcav_score([0.5, -1.0, 2.0, 0.0]) == 0.5
    g = torch.zeros(2, 2, 1, 2)  # [N, C, H, W]
    g[0, 0] = torch.tensor([[1.0, 2.0]])
    g[1, 1] = torch.tensor([[-3.0, 1.0]])
    d = directional_derivatives(Acts(g, ConvLayout()), np.array([1.0, 2.0]))
    np.testing.assert_allclose(d, [3.0, -4.0])


def test_welch_p_by_hand_and_on_constant_runs():
    # a = [1, 2, 3], b = [4, 5, 6]: means 2 and 5, variances 1, se = sqrt(2/3), t = -3.674, Welch df = 4
    from scipy.stats import t as student_t

    assert welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 * student_t.cdf(-3 / np.sqrt(2 / 3), 4))
    assert welch_p([1, 1, 1], [1, 1, 1]) == 1.0 and welch_p([1, 1], [0, 0]) == 0.0
    # one constant sample: a one-sample test of the other against it (Welch with a zero variance)
    # [0, 1, 1, 1] vs 1: mean .75, sd .5, se .25, t = -1, df 3
    assert welch_p([1.0] * 5, [0, 1, 1, 1]) == pytest.approx(2 * student_t.cdf(-1.0, 3))


def test_augmentation_robustness_counts_agreement():
    x = torch.zeros(4, 1, 8, 8)
    x[:2, :, :, :4] = 1.0  # left half bright on the first two images

    def left_bright(imgs):
        return (imgs[:, 0, :, :4].mean((1, 2)) > 0.5).numpy().astype(int)

    r = augmentation_robustness(left_bright, x, augmentations=("flip",))
    assert r["flip"] == 0.5 and r["mean"] == 0.5  # flipping moves the bright half: 2 of 4 change


# ---------------------------------------------------------------- probe kinds on a planted direction
def _planted_acts(n=60, c=6, hw=4, seed=0):
    """Conv activations; positives carry direction e0 in a 2x2 block (the mask)."""
    g = torch.Generator().manual_seed(seed)
    neg = torch.randn(n, c, hw, hw, generator=g) * 0.3
    pos = torch.randn(n, c, hw, hw, generator=g) * 0.3
    masks = torch.zeros(n, hw, hw)
    for i in range(n):
        y, x = [int(v) for v in torch.randint(0, hw - 1, (2,), generator=g)]
        pos[i, 0, y:y + 2, x:x + 2] += 3.0
        masks[i, y:y + 2, x:x + 2] = 1
    return Acts(pos, ConvLayout(), "conv"), Acts(neg, ConvLayout(), "conv"), masks


#: one row per registered probe kind: (name, minimum cosine with the planted direction e0)
PROBE_CASES = [("logistic", 0.8), ("svm", 0.8), ("pattern", 0.9), ("segmentation", 0.8),
               ("ti-max", 0.8), ("ti-mean", 0.8)]


def test_every_probe_kind_has_a_row():
    assert sorted(PROBES.names()) == sorted(k for k, _ in PROBE_CASES)


@pytest.mark.parametrize("kind,min_cos", PROBE_CASES)
def test_probe_kind_recovers_planted_direction(kind, min_cos, tmp_path):
    pos, neg, masks = _planted_acts()
    p = fit_probe(kind, pos.select(slice(0, 40)), neg.select(slice(0, 40)), masks=masks[:40])
    assert p.kind == kind
    assert abs(np.linalg.norm(p.direction) - 1) < 1e-9
    assert p.direction[0] == pytest.approx(max(p.direction, key=abs))
    assert cosine(p, np.eye(6)[0]) >= min_cos
    test = np.r_[p.predict(pos.select(slice(40, 60))), p.predict(neg.select(slice(40, 60)))]
    assert accuracy(test, np.r_[np.ones(20), np.zeros(20)]) >= 0.9
    f = p.save(tmp_path / "cav.npy")
    v = np.load(f)
    assert v.shape == (6,) and v.dtype == np.float32
    maps = localisation_maps(pos.select(slice(40, 60)), p, (8, 8))
    assert maps.shape == (20, 8, 8)
    up = torch.nn.functional.interpolate(masks[40:60, None], size=(8, 8), mode="nearest")[:, 0]
    assert segmentation_score(maps, up)["pointing_game"] >= 0.9


def test_spurious_probe_is_accurate_on_correlated_data_but_not_aligned():
    g = torch.Generator().manual_seed(1)
    base = lambda: torch.randn(80, 4, 1, 1, generator=g) * 0.3
    concept, neg, fp = base(), base(), base()
    concept[:, 0] += 2.0
    concept[:, 1] += 2.0  # the spurious feature rides along with the concept
    fp[:, 1] += 2.0  # false positives: spurious feature only
    A = lambda t: Acts(t, ConvLayout(), "c")
    aligned = fit_probe("logistic", A(concept), A(neg))
    spur = spurious_probe(A(fp), A(neg))
    assert spur.kind == "spurious-logistic"
    assert accuracy(np.r_[spur.predict(A(concept)), spur.predict(A(neg))], np.r_[np.ones(80), np.zeros(80)]) > 0.95
    hard_pos, hard_neg = base(), base()
    hard_pos[:, 0] += 2.0
    hard_neg[:, 1] += 2.0
    assert hard_accuracy(spur.predict(A(hard_pos)), spur.predict(A(hard_neg))) < 0.2
    cured = cured_direction(aligned, spur)
    assert abs(cosine(cured, spur)) < 1e-9 and cured.direction[0] > 0.9


def test_bad_inputs_are_one_line_errors():
    pos, neg, masks = _planted_acts(n=10)
    vec = Acts(torch.randn(10, 5), VectorLayout(), "fc")
    with pytest.raises(UnifiedVizError, match="no spatial axes") as e:
        fit_probe("segmentation", vec, vec, masks=masks)
    assert "\n" not in str(e.value)
    with pytest.raises(UnifiedVizError, match="needs concept masks"):
        fit_probe("segmentation", pos, neg)
    with pytest.raises(UnifiedVizError, match="at least 2"):
        fit_probe("logistic", pos.select(slice(0, 1)), neg)
    with pytest.raises(UnifiedVizError, match="did you mean 'logistic'"):
        fit_probe("logistc", pos, neg)
