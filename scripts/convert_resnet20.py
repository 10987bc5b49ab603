"""Convert akamaster/pytorch_resnet_cifar10's ResNet-20 (BSD-2-Clause) into `builtin:cifar_resnet20`'s shipped weights.

    python scripts/convert_resnet20.py [--src ../shared/models/cifar10_resnet20.th] [--out DIR]

Reads the checkpoint once (torch.load, weights_only=True), checks its sha256, strips the
DataParallel `module.` prefix, loads it strictly into `cifar_resnet_net(20)` (the only key it
lacks is BatchNorm's `num_batches_tracked` counter, newer than the file), prints the model's
predictions on the scikit-image pictures that show a CIFAR-10 class (and on two that show none), and writes
`unifiedviz/models/builtin/weights/cifar_resnet20.safetensors` with `LICENSE.resnet20` beside it.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts._checkpoint import read_checkpoint  # noqa: E402

from unifiedviz.models.builtin._weights import save_builtin_weights  # noqa: E402
from unifiedviz.models.builtin.cifar_resnet import CIFAR10_CLASSES, CIFAR10_SPEC, cifar_resnet_net  # noqa: E402

SHA256 = "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"
#: scikit-image pictures whose subject is a CIFAR-10 class (`horse` is a black-and-white silhouette).
PHOTO_CLASSES = {"chelsea": "cat", "horse": "horse"}
#: photos of no CIFAR-10 class: what the model calls them (a ten-class model has no "none of these").
OTHER_PHOTOS = ("coffee", "astronaut")


def photo(name: str, size: int = 32) -> torch.Tensor:
    """A scikit-image picture, centre-cropped square and resized with antialiasing, [1, 3, size, size] in [0, 1]."""
    import numpy as np
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    arr = arr.astype(np.float32) / (1.0 if arr.dtype == bool else 255.0)
    if arr.ndim == 2:  # grey or binary: the same value in R, G and B
        arr = np.repeat(arr[..., None], 3, axis=2)
    img = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1)[None]
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[..., top:top + side, left:left + side]
    return torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                           align_corners=False)


def main(argv=None) -> None:
    args, ckpt = read_checkpoint(argv, "cifar10_resnet20.th", "unifiedviz/models/builtin/weights", SHA256)
    src = Path(args.src)
    state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
    net = cifar_resnet_net(20).eval()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise SystemExit(f"{src} does not fit ResNet-20: missing {missing}, unexpected {unexpected}")
    mean = torch.tensor(CIFAR10_SPEC.mean).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_SPEC.std).view(1, 3, 1, 1)

    def top(name: str) -> dict:
        with torch.no_grad():
            p, i = net((photo(name) - mean) / std).softmax(1)[0].max(0)
        return {"predicted": CIFAR10_CLASSES[int(i)], "p": round(float(p), 4)}

    predictions = {name: {"class": label, **top(name)} for name, label in PHOTO_CLASSES.items()}
    others = {name: top(name) for name in OTHER_PHOTOS}
    print(json.dumps({"reported_test_accuracy": round(float(ckpt["best_prec1"]), 2), "photos": predictions,
                      "other_photos": others}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = save_builtin_weights(net, "cifar_resnet20", {
        "source": "akamaster/pytorch_resnet_cifar10 resnet20 (BSD-2-Clause, see LICENSE.resnet20)",
        "source_sha256": SHA256,
        "reported_test_accuracy": f"{float(ckpt['best_prec1']):.2f}",
        "photos": json.dumps(predictions),
    }, out)
    shutil.copyfile(src.parent / "LICENSE.resnet20", out / "LICENSE.resnet20")
    print("wrote", path)


if __name__ == "__main__":
    main()
