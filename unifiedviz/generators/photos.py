"""Real photo crops for measuring latent ranges and naturalness: scikit-image's bundled colour photos.

Used by scripts/convert_vqvae.py (the DGN-AM clip of `builtin:cifar10-vqvae`) and bench/generative.py
(the reference reconstruction error); needs scikit-image, which only those scripts require.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def photo_crops(n: int = 256, size: int = 32, seed: int = 0) -> torch.Tensor:
    """`n` random square crops (side 1/4 to 1/1 of the photo's short side) resized to `size`, [n, 3, size, size] in [0, 1]."""
    import skimage.data

    photos = []
    for name in PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # a photo that needs a download: skip it
            continue
        if img.ndim == 3 and img.shape[2] >= 3:
            photos.append(torch.tensor(img[..., :3]).permute(2, 0, 1).float() / 255.0)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        short = min(h, w)
        side = int(torch.randint(short // 4, short + 1, (1,), generator=g))
        top = int(torch.randint(0, h - side + 1, (1,), generator=g))
        left = int(torch.randint(0, w - side + 1, (1,), generator=g))
        crop = photo[:, top:top + side, left:left + side].unsqueeze(0)
        out.append(F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out).clamp(0.0, 1.0)
