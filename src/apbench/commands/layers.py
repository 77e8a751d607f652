"""``apbench layers MODEL``: a backbone's addressable points (DESIGN: one addressing scheme for every
method) with the activation shape at each, built on the ``meta`` device so no weight is allocated."""
from __future__ import annotations

import argparse
import sys

from ..config_dir import CONF_DIR
from . import OneLineHelp


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="apbench layers", description=__doc__, formatter_class=OneLineHelp)
    ap.add_argument("model", metavar="MODEL", help="a model config name (conf/model/) or a timm model name")
    ap.add_argument("--image-size", type=int, default=None, metavar="N",
                    help="input side in pixels (default: the model config's, else timm's)")
    ap.add_argument("--modules", action="store_true", help="also list every module path")
    return ap


def main(argv: list[str]) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    if a.image_size is not None and a.image_size < 1:
        ap.error(f"--image-size {a.image_size} must be a positive number of pixels, e.g. --image-size 224")

    import timm  # after the arguments are checked: a usage error needs no torch
    import torch
    from omegaconf import OmegaConf

    from ..models.layers import LayerSpecError, format_points, list_points

    cfg_file = CONF_DIR / "model" / f"{a.model}.yaml"
    kwargs, name, size = {}, a.model, None
    if cfg_file.is_file():
        mc = OmegaConf.to_container(OmegaConf.load(cfg_file), resolve=True)
        name, kwargs = mc["name"], mc.get("kwargs") or {}
        size = (mc.get("preprocessing") or {}).get("image_size")
    elif a.model not in timm.list_models():
        configs = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
        print(f"apbench layers: {a.model!r} is neither a model config ({', '.join(configs)}) nor a timm model name",
              file=sys.stderr)
        return 2
    with torch.device("meta"):  # shapes without allocating weights, even for ViT-L
        model = timm.create_model(name, pretrained=False, **kwargs)
    size = a.image_size or size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    try:
        points = list_points(model, (3, size, size))
    except LayerSpecError as e:
        print(f"apbench layers: {e}", file=sys.stderr)
        return 2
    print(format_points(f"{a.model} ({name}, {size} px)", points))
    if a.modules:
        for path, mod in model.named_modules():
            if path:
                print(f"  {path}  ({type(mod).__name__})")
    return 0
