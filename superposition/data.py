"""Datasets (CIFAR-10, Tiny ImageNet, scikit-learn digits, synthetic) behind one Lightning DataModule.

Every dataset yields (float32 image [3, H, W] in [0, 1], int label); the model normalises.
No augmentation, as in the paper. The DataModule trains on `labeled` indices of the training
split (all of it for the baseline) and hands out plain loaders for scoring and measuring.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from unifiedviz.errors import UnifiedVizError

from .config import DataConfig

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


class ImageTensors(Dataset):
    """Images held in memory: uint8 (0..255) or float ([0, 1]), [N, C, H, W]; grey becomes RGB."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int | None = None) -> None:
        self.images, self.labels, self.size = images, labels.long(), size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return _to_model_input(self.images[i], self.size), int(self.labels[i])


class TinyImageNetFolder(Dataset):
    """Tiny ImageNet's own layout: `train/<wnid>/images/*.JPEG`, `val/images` + `val_annotations.txt`."""

    def __init__(self, samples: list[tuple[Path, int]], size: int | None = None) -> None:
        self.samples, self.size = samples, size
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        path, label = self.samples[i]
        with Image.open(path) as img:
            x = pil_to_tensor(img.convert("RGB"))
        return _to_model_input(x, self.size), label


def _to_model_input(x: torch.Tensor, size: int | None) -> torch.Tensor:
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return x.contiguous()


# --------------------------------------------------------------------------- loaders per dataset
def load_splits(cfg: DataConfig, seed: int) -> tuple[Dataset, Dataset, list[str]]:
    """(train set, test set, class names) for `cfg.name`."""
    return _LOADERS[cfg.name](cfg, seed)


def _cifar10(cfg: DataConfig, seed: int):
    from torchvision.datasets import CIFAR10

    root = _root(cfg, "cifar-10-batches-py/")
    if not cfg.download and not (root / CIFAR10.base_folder / "data_batch_1").is_file():
        raise UnifiedVizError(
            f"CIFAR-10 not found in {root}: extract cifar-10-python.tar.gz there (it holds "
            "cifar-10-batches-py/) or set data.download: true"
        )
    splits = []
    for train in (True, False):
        try:
            ds = CIFAR10(str(root), train=train, download=cfg.download)
        except RuntimeError as exc:  # torchvision's md5 check of the batch files
            raise UnifiedVizError(f"CIFAR-10 in {root} is incomplete or corrupted ({exc}): extract it again") from None
        except OSError as exc:
            raise UnifiedVizError(
                f"could not download CIFAR-10 into {root} ({exc}); fetch cifar-10-python.tar.gz by hand and extract it there"
            ) from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # uint8 [N, 3, 32, 32]
        splits.append(ImageTensors(images, torch.tensor(ds.targets), cfg.image_size))
    return splits[0], splits[1], list(ds.classes)


def _tinyimagenet(cfg: DataConfig, seed: int):
    root = _root(cfg, "tiny-imagenet-200/")
    folder = root if (root / "wnids.txt").is_file() else root / "tiny-imagenet-200"
    if not (folder / "wnids.txt").is_file() and cfg.download:
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(TINY_IMAGENET_URL, str(root))
        except OSError as exc:
            raise UnifiedVizError(
                f"could not download Tiny ImageNet into {root} ({exc}); fetch tiny-imagenet-200.zip by hand and unzip it there"
            ) from None
    if not (folder / "wnids.txt").is_file():
        raise UnifiedVizError(
            f"Tiny ImageNet not found in {root}: unzip tiny-imagenet-200.zip there (wnids.txt, train/, val/) "
            "or set data.download: true"
        )
    wnids = sorted(w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip())
    index = {w: i for i, w in enumerate(wnids)}
    train = [
        (p, index[w]) for w in wnids for p in sorted((folder / "train" / w / "images").glob("*.JPEG"))
    ]
    annotations = folder / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise UnifiedVizError(f"{annotations} is missing: Tiny ImageNet's val/ needs it for labels; unzip the archive again")
    val = []
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            if parts[1] not in index:
                raise UnifiedVizError(f"{annotations} names class {parts[1]!r}, which is not in wnids.txt: unzip the archive again")
            val.append((folder / "val" / "images" / parts[0], index[parts[1]]))
    if not train or not val:
        raise UnifiedVizError(f"Tiny ImageNet in {folder} has no {'training' if not train else 'validation'} images: unzip it again")
    return TinyImageNetFolder(train, cfg.image_size), TinyImageNetFolder(val, cfg.image_size), _tiny_names(folder, wnids)


def _tiny_names(folder: Path, wnids: list[str]) -> list[str]:
    words = folder / "words.txt"
    names = {}
    if words.is_file():
        for line in words.read_text().splitlines():
            wnid, _, text = line.partition("\t")
            names[wnid] = text.split(",")[0].strip()
    return [names.get(w, w) for w in wnids]


def _digits(cfg: DataConfig, seed: int):
    from unifiedviz.datasets import DIGITS_CLASSES, load_digits_images

    size = cfg.image_size or 32
    splits = [ImageTensors(*load_digits_images(split, size=size)) for split in ("train", "test")]
    return splits[0], splits[1], list(DIGITS_CLASSES)


def _synthetic(cfg: DataConfig, seed: int):
    s = cfg.synthetic
    g = torch.Generator().manual_seed(seed)
    # Smooth class patterns (4x4 noise upsampled) so that small convnets can learn them.
    patterns = F.interpolate(torch.rand(s.num_classes, 3, 4, 4, generator=g), size=(s.image_size,) * 2,
                             mode="bilinear", align_corners=False)

    def sample(n: int) -> ImageTensors:
        labels = (torch.arange(n) % s.num_classes)[torch.randperm(n, generator=g)]
        noise = s.noise * torch.randn(n, 3, s.image_size, s.image_size, generator=g)
        return ImageTensors((patterns[labels] + noise).clamp(0, 1), labels, cfg.image_size)

    return sample(s.num_train), sample(s.num_test), [f"class{k}" for k in range(s.num_classes)]


def _root(cfg: DataConfig, holds: str) -> Path:
    if cfg.root is None:
        raise UnifiedVizError(f"data.root is not set: point it at the folder that holds (or should hold) {holds}")
    return Path(cfg.root).expanduser()


_LOADERS = {"cifar10": _cifar10, "tinyimagenet": _tinyimagenet, "digits": _digits, "synthetic": _synthetic}


# --------------------------------------------------------------------------- the DataModule
class SuperpositionData(L.LightningDataModule):
    """Train on `labeled` indices of the training split (None = all); test on the test split."""

    def __init__(self, cfg: DataConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.train_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.class_names: list[str] = []
        self.labeled: np.ndarray | None = None
        self.shuffle_seed = seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:  # Lightning calls setup on every fit; load once
            self.train_set, self.test_set, self.class_names = load_splits(self.cfg, self.seed)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Side of the (square) images the model sees."""
        assert self.train_set is not None, "call setup() first"
        return int(self.train_set[0][0].shape[-1])

    def use(self, labeled: Sequence[int] | None, shuffle_seed: int) -> None:
        """Train the next fit on these training indices, shuffled by this seed."""
        self.labeled = None if labeled is None else np.asarray(labeled, dtype=np.int64)
        self.shuffle_seed = shuffle_seed

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        ds = self.train_set if self.labeled is None else Subset(self.train_set, self.labeled.tolist())
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.shuffle_seed),
                          num_workers=self.cfg.num_workers)

    def loader(self, ds: Dataset, indices: Sequence[int] | None = None) -> DataLoader:
        """An ordered loader for inference over `ds` (or the given indices of it)."""
        if indices is not None:
            ds = Subset(ds, np.asarray(indices, dtype=np.int64).tolist())
        return DataLoader(ds, batch_size=self.cfg.eval_batch_size, shuffle=False, num_workers=self.cfg.num_workers)
