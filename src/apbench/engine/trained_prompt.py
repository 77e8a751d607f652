"""The trained activation prompt of an AP run, saved beside its record (``prompt.pt``) for analyses
(``apbench analyze analysis.prompt_run=<run folder>``): only the prompt tensors, a few KB to MB."""
from __future__ import annotations

from pathlib import Path

PROMPT_NAME = "prompt.pt"


def save_prompt(adapted, run_dir: Path) -> Path | None:
    """Write ``model.apbench_prompts`` (AP only) atomically; None for other methods."""
    prompts = getattr(adapted.model, "apbench_prompts", None)
    if adapted.method != "ap" or prompts is None:
        return None
    from .checkpoint import save
    path = Path(run_dir) / PROMPT_NAME
    save(path, {k: v.detach().cpu().clone() for k, v in prompts.state_dict().items()})
    return path
