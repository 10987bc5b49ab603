"""Convert the spiking CIFAR-10 CNN of iabs-neuro/mango (MIT) into the package's `builtin:cifar10-snn` weights.

    python scripts/convert_snn.py [--src ../shared/models/mango_snn_cifar10.pt]

Reads the shared checkpoint once (torch.load, weights_only=True, map_location cpu), checks its
sha256, loads it strictly into `SpikingCifarCNN` (the LIF buffers beta/threshold/reset must match
the architecture's: beta 0.9, threshold 1, reset by subtraction), prints the class spike rates on
scikit-image's `chelsea` at 128 steps, and writes
`unifiedviz/models/builtin/weights/cifar10_snn.safetensors` with `LICENSE.mango` beside it.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts._checkpoint import read_checkpoint  # noqa: E402

from unifiedviz.models.builtin._weights import save_builtin_weights  # noqa: E402
from unifiedviz.models.builtin.cifar_snn import NAME, SNN_SPEC, SpikingCifarCNN  # noqa: E402
from unifiedviz.models.spec import VizModel  # noqa: E402

SHA256 = "0931bb64a7206ce59c6477021d9cb0bd058e5504a1f9762ce330d653b2f6c0fd"


def main(argv=None) -> None:
    args, state = read_checkpoint(argv, "mango_snn_cifar10.pt", "unifiedviz/models/builtin/weights", SHA256)
    net = SpikingCifarCNN().eval()
    expected = net.state_dict()
    for key in [k for k in expected if k.endswith(("beta", "threshold", "reset_mechanism_val", "graded_spikes_factor"))]:
        if not torch.equal(state[key].to(expected[key].dtype), expected[key]):
            raise SystemExit(f"{key}: {state[key]} in the file, {expected[key]} in the architecture")
    net.load_state_dict(state, strict=True)
    from skimage import data
    from torch.nn.functional import interpolate

    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    cat = interpolate(cat, size=(32, 32), mode="area")
    with torch.no_grad():
        rates = VizModel(net, SNN_SPEC)(cat)[0]
    print("chelsea (a cat) at 128 steps, spike rate per class:", [round(float(r), 4) for r in rates])
    out = Path(args.out)
    path = save_builtin_weights(net, NAME, {"source": "iabs-neuro/mango mango_snn_cifar10.pt", "sha256": SHA256,
                                            "license": "MIT (LICENSE.mango)", "trained_steps": "128"}, out)
    shutil.copyfile(ROOT / "unifiedviz/generators/weights/LICENSE.mango", out / "LICENSE.mango")
    print(f"wrote {path} ({path.stat().st_size} bytes) and {out / 'LICENSE.mango'}")


if __name__ == "__main__":
    main()
