"""Images for a model from a folder, a single file, or a data set the package knows.

Everything comes back as a float tensor in [0, 1], resized and converted to the model's
`InputSpec` (channels and size), with labels when the source has them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import UnifiedVizError
from .models.spec import InputSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Offline data sets by name: digits splits from scikit-learn; `photos`, 256 crops of
#: scikit-image's bundled colour photos (no labels; needs scikit-image).
DATASETS = ("digits", "digits-test", "digits-train", "digits-all", "photos")
PHOTO_CROPS = 256


@dataclass
class Inputs:
    images: torch.Tensor  # [N, C, H, W] in [0, 1]
    labels: torch.Tensor | None  # [N] int64, when the source knows them
    names: list[str]


def load_inputs(source: str | Path, spec: InputSpec, *, limit: int | None = None) -> Inputs:
    """Load `source` (data set name, image folder or image file) shaped for `spec`."""
    text = str(source)
    if text in DATASETS:
        inputs = _dataset(text, spec)
    else:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise UnifiedVizError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {text!r}")
        elif path.is_file():
            files = [path]
        else:
            raise UnifiedVizError(
                f"images {text!r} not found: give an image file, a folder of images, or one of {', '.join(DATASETS)}"
            )
        images = torch.stack([_read(p, spec) for p in files])
        inputs = Inputs(images, None, [p.name for p in files])
    if limit is not None:
        inputs = Inputs(inputs.images[:limit], None if inputs.labels is None else inputs.labels[:limit],
                        inputs.names[:limit])
    return inputs


def fit_to_spec(images: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """Resize [N, C, H, W] to the spec's size and convert grey <-> RGB."""
    if images.shape[1] != spec.channels:
        if images.shape[1] == 1:
            images = images.expand(-1, spec.channels, -1, -1)
        elif spec.channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype)[: images.shape[1]]
            images = (images * weights.view(1, -1, 1, 1)).sum(1, keepdim=True) / weights.sum()
        else:
            raise UnifiedVizError(f"cannot convert {images.shape[1]}-channel images to {spec.channels} channels")
    if tuple(images.shape[2:]) != tuple(spec.size):
        images = F.interpolate(images, size=tuple(spec.size), mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(0, 1).contiguous()


def _read(path: Path, spec: InputSpec) -> torch.Tensor:
    try:
        with Image.open(path) as img:
            img = img.convert("L" if spec.channels == 1 else "RGB")
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except OSError as exc:
        raise UnifiedVizError(f"cannot read image {str(path)!r}: {exc}") from None
    t = torch.from_numpy(arr.copy())
    t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
    return fit_to_spec(t.unsqueeze(0), spec)[0]


def _dataset(name: str, spec: InputSpec) -> Inputs:
    from .datasets import load_digits_images

    if name == "photos":
        return _photos(spec)
    split = {"digits": "test", "digits-test": "test", "digits-train": "train", "digits-all": "all"}[name]
    images, labels = load_digits_images(split)
    images = fit_to_spec(images, spec)
    return Inputs(images, labels, [f"{name}_{i:04d}" for i in range(len(labels))])


def _photos(spec: InputSpec) -> Inputs:
    try:
        from .generators.photos import photo_crops
        crops = photo_crops(PHOTO_CROPS, size=max(spec.size))
    except ImportError:
        raise UnifiedVizError("the photos data set needs scikit-image: pip install scikit-image") from None
    return Inputs(fit_to_spec(crops, spec), None, [f"photos_{i:04d}" for i in range(len(crops))])
