"""`digits-vit`: a tiny timm Vision Transformer for 32x32 scikit-learn digits.

Built from timm's own `VisionTransformer`, so layer names (`blocks.2.attn`,
`blocks.0.mlp.fc1`, `head`) and prefix-token handling are exactly those of any timm ViT.
"""
from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer

from ...datasets import DIGITS_CLASSES
from ..spec import VizModel
from ._weights import load_builtin_weights
from .digits_cnn import DIGITS_SPEC

NAME = "digits-vit"


def digits_vit_net() -> VisionTransformer:
    """4x4 patches (64 tokens + CLS), width 64, 4 blocks of 4 heads, MLP ratio 2."""
    return VisionTransformer(
        img_size=32, patch_size=4, in_chans=1, num_classes=len(DIGITS_CLASSES),
        embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0, class_token=True, global_pool="token",
    )


def digits_vit(*, load_weights: bool = True) -> VizModel:
    """The digits ViT in eval mode; with `load_weights`, the shipped trained weights."""
    net = digits_vit_net()
    if load_weights:
        load_builtin_weights(net, NAME)
    return VizModel(
        net, DIGITS_SPEC, source=f"builtin:{NAME}",
        num_prefix_tokens=net.num_prefix_tokens, class_names=DIGITS_CLASSES,
    ).eval()
