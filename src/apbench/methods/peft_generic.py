"""Any peft tuner on a timm model: the peft config dict passes through.

    method.config={peft_type: LOHA, r: 8, alpha: 16}
    method.config={peft_type: IA3}

``peft_type`` names the tuner (LOHA, LOKR, IA3, OFT, BOFT, VERA, LORA with use_dora ...); the other
keys are that tuner's config fields. When the dict has no ``target_modules``, they come from
``layers`` and ``targets`` as for ``lora``; for IA3 the targeted ``fc2`` layers become its
``feedforward_modules`` (scaled at their input, as in the IA3 paper) unless the dict names them.
Prompt-learning tuners (prompt/prefix/p-tuning) need a transformers language model and are refused.
"""
from __future__ import annotations

from .base import MethodError, register_method
from .blocks import select_blocks
from .peft_wrap import names_regex, target_names, wrap


def peft_config(config: dict):
    from peft import PeftType
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    config = dict(config or {})
    kind = str(config.pop("peft_type", "")).upper()
    if kind not in PEFT_TYPE_TO_CONFIG_MAPPING:
        known = sorted(t.value for t in PeftType if t.value in PEFT_TYPE_TO_CONFIG_MAPPING)
        raise MethodError(f"method.config.peft_type={kind or None!r} is not a peft tuner; choose one of {known}")
    return kind, PEFT_TYPE_TO_CONFIG_MAPPING[kind], config


@register_method("peft")
def peft_generic(model, head_prefixes, config=None, layers="all", targets=None, merge=False):
    from peft import PromptLearningConfig

    kind, cls, fields = peft_config(config)
    if issubclass(cls, PromptLearningConfig):
        raise MethodError(f"peft {kind} is a prompt-learning tuner for transformers language models; "
                          "for prompt tokens in a ViT use method=vpt")
    points = select_blocks(model, layers, "peft", allow_modules=True)
    if "target_modules" not in fields and "target_parameters" not in fields:
        names = target_names(model, points, targets, r=fields.get("r"))
        fields["target_modules"] = names_regex(names)
        if kind == "IA3" and "feedforward_modules" not in fields:
            fields["feedforward_modules"] = [n for n in names if n.endswith("fc2")]
    try:
        cfg = cls(**fields)
    except (TypeError, ValueError) as e:
        raise MethodError(f"peft {kind} config {fields}: {e}") from e
    return wrap(model, cfg, head_prefixes, "peft", points, merge, "adapter",
                info={"config": fields})
