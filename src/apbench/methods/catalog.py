"""What each method is, without importing it: its name, the module that implements it, the model
families it applies to and a one-line summary. ``apbench methods`` and config checks read this; the
module's ``@register_method(name)`` line binds the function to its entry (``base.register_method``),
and a test keeps the two in step. Adding a method: one module, one line here, one YAML in conf/method/."""
from __future__ import annotations

from dataclasses import dataclass

from ..models.families import FAMILIES

VIT = ("vit",)


@dataclass(frozen=True)
class Entry:
    name: str
    module: str  # under apbench.methods
    families: tuple[str, ...]
    summary: str


CATALOG = {e.name: e for e in (
    Entry("ap", "activation_prompt", FAMILIES, "additive prompt on the activation at the given point(s)"),
    Entry("adapter", "adapters", FAMILIES, "bottleneck adapters: parallel (AdaptFormer), sequential (Houlsby), conv"),
    Entry("bitfit", "bitfit", FAMILIES, "all bias terms (BN statistics frozen)"),
    Entry("e2vpt_no_pruning", "e2vpt", VIT,
          "E2VPT without its pruning stage: deep visual prompts + key-value prompts in every block"),
    Entry("full_ft", "full_finetune", FAMILIES, "all weights and the head"),
    Entry("gated_prompt", "gated_prompt", VIT,
          "GatedPromptTuning: shallow prompts, per-block gates and attention temperatures"),
    Entry("linear_probe", "linear_probe", FAMILIES, "new linear head on frozen features"),
    Entry("lora", "lora", FAMILIES, "low-rank updates (peft LoRA) of chosen linears/convs in chosen blocks"),
    Entry("norm_tuning", "norm_tuning", FAMILIES, "affine parameters of norm layers (BN statistics frozen)"),
    Entry("peft", "peft_generic", FAMILIES, "any peft tuner (LoHa, LoKr, IA3, OFT ...) from a peft config dict"),
    Entry("ssf", "ssf", FAMILIES, "per-channel scale and shift after each operation (reference) or chosen point"),
    Entry("vp", "visual_prompt", FAMILIES,
          "learnable pixel pattern on the input: pad border, expansive surround or full"),
    Entry("vpt", "vpt", VIT, "learnable prompt tokens in the ViT token sequence (shallow or deep)"),
)}

# What kind of adaptation each method is: the results browser's "method family" filter. A method
# missing here shows as "other".
METHOD_KINDS = {
    "prompt": ("ap", "vp", "vpt", "gated_prompt", "e2vpt_no_pruning"),
    "adapter": ("adapter",),
    "low-rank / peft": ("lora", "peft"),
    "partial tuning": ("bitfit", "norm_tuning", "ssf"),
    "baseline": ("linear_probe", "full_ft"),
}


def method_kind(method: str) -> str:
    return next((kind for kind, names in METHOD_KINDS.items() if method in names), "other")
