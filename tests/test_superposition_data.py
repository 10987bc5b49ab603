"""Datasets read from fixtures written in the real on-disk formats; the DataModule's subsets."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from superposition.config import DataConfig, SyntheticConfig
from superposition.data import SuperpositionData
from unifiedviz.datasets import load_digits_images
from unifiedviz.errors import UnifiedVizError

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root, per_batch=4):
    """cifar-10-batches-py/ as in cifar-10-python.tar.gz: pickled dicts of uint8 rows (R, G, B planes)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        for i in range(per_batch):
            data[i, :1024] = 10 * b + i  # red plane: identifies the image
            data[i, 1024 + 1 * 32 + 2] = 200  # green at row 1, column 2
        labels = [(b + i) % 10 for i in range(per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch}, f)


def test_cifar10_reads_torchvisions_format(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    # Our fixture is not the real archive, so torchvision's md5 check would refuse it.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    data = SuperpositionData(DataConfig(name="cifar10", root=str(tmp_path)))
    data.setup()
    assert len(data.train_set) == 20 and len(data.test_set) == 4
    assert data.class_names == CIFAR_CLASSES
    x, y = data.train_set[6]  # batch 2 (b=1), image 2
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.full((32, 32), 12 / 255))
    assert x[1, 1, 2] == pytest.approx(200 / 255) and x[1, 2, 1] == 0
    assert y == 3
    assert data.test_set[1][0][0, 0, 0] == pytest.approx(51 / 255)
    resized = SuperpositionData(DataConfig(name="cifar10", root=str(tmp_path), image_size=64))
    resized.setup()
    assert resized.train_set[0][0].shape == (3, 64, 64) and resized.image_size == 64


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(UnifiedVizError, match=rf"CIFAR-10 not found in {tmp_path}.*download: true"):
        SuperpositionData(DataConfig(name="cifar10", root=str(tmp_path))).setup()
    with pytest.raises(UnifiedVizError, match="data.root is not set"):
        SuperpositionData(DataConfig(name="cifar10")).setup()
    with pytest.raises(UnifiedVizError, match=rf"Tiny ImageNet not found in {tmp_path}.*download: true"):
        SuperpositionData(DataConfig(name="tinyimagenet", root=str(tmp_path))).setup()


COLOURS = {"n02": (250, 10, 10), "n01": (10, 250, 10), "n03": (10, 10, 250)}


def write_tiny_imagenet(root):
    """tiny-imagenet-200/ as unzipped: wnids.txt, words.txt, train/<wnid>/images, val/images + annotations."""
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("n02\nn01\nn03\n")  # not sorted on purpose
    (folder / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tsalamander\nn03\tbullfrog\n")
    for wnid, colour in COLOURS.items():
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (64, 64), colour).save(images / f"{wnid}_{k}.JPEG")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for i, wnid in enumerate(["n03", "n01", "n03"]):
        Image.new("RGB", (64, 64), COLOURS[wnid]).save(folder / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def test_tiny_imagenet_folder_layout(tmp_path):
    write_tiny_imagenet(tmp_path)
    data = SuperpositionData(DataConfig(name="tinyimagenet", root=str(tmp_path), image_size=32))
    data.setup()
    assert data.class_names == ["goldfish", "salamander", "bullfrog"]  # sorted wnids n01, n02, n03
    assert len(data.train_set) == 6 and data.train_set.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.test_set.labels.tolist() == [2, 0, 2]
    x, y = data.test_set[1]
    assert x.shape == (3, 32, 32) and y == 0
    assert torch.allclose(x.mean((1, 2)), torch.tensor(COLOURS["n01"]) / 255, atol=0.03)  # JPEG is lossy


def test_tiny_imagenet_needs_val_annotations(tmp_path):
    write_tiny_imagenet(tmp_path)
    (tmp_path / "tiny-imagenet-200" / "val" / "val_annotations.txt").unlink()
    with pytest.raises(UnifiedVizError, match="val_annotations.txt is missing"):
        SuperpositionData(DataConfig(name="tinyimagenet", root=str(tmp_path / "tiny-imagenet-200"))).setup()


def test_digits_come_from_the_shared_split_as_rgb():
    data = SuperpositionData(DataConfig(name="digits", image_size=16))
    data.setup()
    images, labels = load_digits_images("test", size=16)
    assert len(data.test_set) == len(labels) and data.test_set.labels.tolist() == labels.tolist()
    x, _ = data.test_set[3]
    assert x.shape == (3, 16, 16)
    assert torch.equal(x[2], images[3, 0])  # grey repeated into all three channels
    assert data.class_names == [str(d) for d in range(10)]


def test_synthetic_data_is_seeded():
    cfg = DataConfig(synthetic=SyntheticConfig(num_train=12, num_test=6, num_classes=3, image_size=8))
    a, b, c = SuperpositionData(cfg, seed=1), SuperpositionData(cfg, seed=1), SuperpositionData(cfg, seed=2)
    for d in (a, b, c):
        d.setup()
    assert torch.equal(a.train_set.images, b.train_set.images)
    assert not torch.equal(a.train_set.images, c.train_set.images)
    assert sorted(a.train_set.labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4  # balanced


def test_train_loader_covers_exactly_the_labelled_images_in_seeded_order():
    cfg = DataConfig(batch_size=4, synthetic=SyntheticConfig(num_train=30, num_test=6, image_size=8))
    data = SuperpositionData(cfg)
    data.setup()
    # Tag every training image with its index so that batches can be traced back.
    data.train_set.images[:, 0, 0, 0] = torch.arange(30) / 100
    labeled = [1, 4, 9, 16, 25, 26, 29]

    def order(subset, seed):
        data.use(subset, shuffle_seed=seed)
        return [round(float(v) * 100) for x, _ in data.train_dataloader() for v in x[:, 0, 0, 0]]

    first = order(labeled, 5)
    assert sorted(first) == labeled
    assert first == order(labeled, 5) and first != order(labeled, 6)
    assert sorted(order(None, 0)) == list(range(30))  # the baseline: every training image
