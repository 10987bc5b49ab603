import numpy as np
import pytest
import torch

from unifiedviz.datasets import DIGITS_CLASSES, digits_split, load_digits_images
from unifiedviz.errors import UnifiedVizError


def test_split_is_disjoint_complete_and_stratified():
    train_idx, test_idx = digits_split()
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(1797))
    _, labels = load_digits_images("all", size=8)
    test_counts = np.bincount(labels.numpy()[test_idx], minlength=10)
    all_counts = np.bincount(labels.numpy(), minlength=10)
    # Every class gets round(20%) of its members into the test split.
    assert np.array_equal(test_counts, np.round(0.2 * all_counts).astype(int))


def test_split_is_pinned():
    # Every accuracy in the project is measured on this split: it must never drift
    # (e.g. with a numpy or scikit-learn upgrade).
    _, test_idx = digits_split()
    assert len(test_idx) == 359
    assert test_idx[:10].tolist() == [3, 7, 13, 19, 36, 38, 43, 48, 53, 55]
    assert int(test_idx.sum()) == 311827


def test_splits_select_the_indexed_images():
    x_all, y_all = load_digits_images("all")
    train_idx, test_idx = digits_split()
    for split, idx in (("train", train_idx), ("test", test_idx)):
        x, y = load_digits_images(split)
        assert torch.equal(x, x_all[idx]) and torch.equal(y, y_all[idx])


def test_images_are_unit_range_and_upsampled_from_sklearn():
    from sklearn.datasets import load_digits

    x, y = load_digits_images("all", size=32)
    assert x.shape == (1797, 1, 32, 32) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.99
    raw = load_digits()
    x8, y8 = load_digits_images("all", size=8)
    assert torch.allclose(x8[:, 0], torch.tensor(raw.images / 16, dtype=torch.float32))
    assert torch.equal(y8, torch.tensor(raw.target))
    # Upsampling keeps each picture: block-averaging back to 8x8 lands near its own original
    # (bilinear blurs a little), far nearer than to a different digit.
    back = torch.nn.functional.avg_pool2d(x, 4)
    own, other = (back - x8).abs().mean(), (back - x8.roll(1, 0)).abs().mean()
    assert own < 0.1 and own < other / 3
    assert DIGITS_CLASSES == [str(d) for d in range(10)]


def test_calls_are_deterministic_and_independent():
    a, _ = load_digits_images("test", size=16)
    a.zero_()  # callers may modify what they get without affecting later calls
    b, _ = load_digits_images("test", size=16)
    c, _ = load_digits_images("test", size=16)
    assert b.abs().sum() > 0 and torch.equal(b, c)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "val"}, "train, test, all"),
    ({"size": 0}, "positive integer"),
    ({"size": 32.0}, "positive integer"),
])
def test_bad_arguments_raise_user_errors(kwargs, match):
    with pytest.raises(UnifiedVizError, match=match):
        load_digits_images(**kwargs)


def test_photos_source_is_scikit_image_crops_shaped_for_the_model():
    from unifiedviz.generators.photos import photo_crops
    from unifiedviz.inputs import PHOTO_CROPS, fit_to_spec, load_inputs
    from unifiedviz.models.spec import InputSpec

    spec = InputSpec(channels=3, size=(32, 32))
    inputs = load_inputs("photos", spec, limit=5)
    assert inputs.images.shape == (5, 3, 32, 32) and inputs.labels is None
    assert torch.equal(inputs.images, fit_to_spec(photo_crops(PHOTO_CROPS, size=32), spec)[:5])
    assert inputs.images.std() > 0.05  # real photo content, not a blank
