"""Heads as an axis: how the backbone's output becomes the task's logits.

* ``linear`` -- a new classifier for the task (``model.reset_classifier(n)``); it trains.
* ``source`` -- the pretrained classifier, frozen, read as is; the task must have its classes.
* ``random`` -- the frozen source classifier read through a fixed random one-to-one label map.
* ``flm``    -- frequency label mapping: once, before training, each target class takes the source
  class the model predicts most often for it, greedily one-to-one by descending count.
* ``ilm``    -- iterative label mapping: the same, recomputed at the start of every epoch from the
  current (prompted) model.

Mappings read only the dataset the training loop passes to ``on_epoch_start`` (the training
split), never change at evaluation, and are recorded in ``adapted.info["label_map"]`` as
``label_map[target] = source class``.

    >>> head = setup_head(model, "flm", num_classes=10)
    >>> adapted = head.attach(methods.apply(model, "ap", head_prefixes=head.prefixes, layers=[8]))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

HEADS = ("linear", "source", "random", "flm", "ilm")
MAPPED = ("random", "flm", "ilm")


class HeadError(ValueError):
    """A head that cannot serve this model and task (unknown kind, too few source classes)."""


def greedy_one_to_one(counts: torch.Tensor) -> torch.Tensor:
    """``counts[t, s]``: how often target class t was predicted as source class s.

    Repeatedly takes the largest remaining count, assigns that target to that source, and removes
    both; ties go to the lower target, then the lower source. Returns ``map[t] = s``, one-to-one.
    """
    t_n, s_n = counts.shape
    if s_n < t_n:
        raise HeadError(f"cannot map {t_n} target classes one-to-one onto {s_n} source classes")
    c = counts.to(torch.float64).clone()
    mapping = torch.full((t_n,), -1, dtype=torch.long)
    for _ in range(t_n):
        t, s = divmod(int(torch.argmax(c)), s_n)  # argmax returns the first maximum in row-major order
        mapping[t] = s
        c[t, :] = -1  # counts are >= 0, so a taken row/column never wins again
        c[:, s] = -1
    return mapping


def frequency_mapping(source_pred: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      source_classes: int) -> torch.Tensor:
    """The FLM/ILM map from per-sample source predictions and target labels."""
    counts = torch.bincount(labels.long() * source_classes + source_pred.long(),
                            minlength=num_classes * source_classes).view(num_classes, source_classes)
    return greedy_one_to_one(counts)


@torch.no_grad()
def source_predictions(model: nn.Module, dataset: Dataset, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Source-class argmax and labels of every sample of ``dataset``, in eval mode, without gradients."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, labels = [], []
    try:
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
            preds.append(model(x.to(device)).argmax(-1).cpu())
            labels.append(torch.as_tensor(y))
    finally:
        model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


@dataclass
class Head:
    """What ``setup_head`` did to the model, and how to finish the job once the method is applied."""

    kind: str
    prefixes: list[str]          # parameter-name prefixes that train as the head ([] = head frozen)
    num_classes: int
    source_classes: int
    mapping: torch.Tensor | None = None
    history: list[list[int]] = field(default_factory=list)  # one entry per (re)computed map
    batch_size: int = 128

    def map_logits(self, out: torch.Tensor) -> torch.Tensor:
        # A gather, not a new layer: the source head stays exactly as pretrained.
        return out.index_select(-1, self.mapping.to(out.device))

    def attach(self, adapted):
        """Install the output map and the per-epoch update on ``adapted``; returns it."""
        adapted.info["head"] = self.kind
        if self.mapping is None:
            return adapted
        adapted.output_map = self.map_logits
        adapted.info["label_map"] = self.mapping.tolist()
        if self.kind in ("flm", "ilm"):
            earlier = getattr(adapted, "on_epoch_start", None)

            def on_epoch_start(epoch: int, train_set: Dataset) -> None:
                if earlier is not None:
                    earlier(epoch, train_set)
                self.update(adapted, epoch, train_set)
            adapted.on_epoch_start = on_epoch_start  # the loop calls this; it knows nothing of heads
        return adapted

    def update(self, adapted, epoch: int, train_set: Dataset) -> None:
        if self.kind == "flm" and self.history:
            return  # computed once
        pred, y = source_predictions(adapted.model, train_set, self.batch_size)
        self.mapping = frequency_mapping(pred, y, self.num_classes, self.source_classes)
        self.history.append(self.mapping.tolist())
        adapted.info["label_map"] = self.history[-1]
        adapted.info["label_map_history"] = list(self.history)
        if self.kind == "flm" and epoch > 0:
            # Resumed run: the map comes from the resumed model, not the one before training.
            adapted.info["label_map_computed_at_epoch"] = epoch


def head_prefixes_of(model: nn.Module) -> list[str]:
    """The parameter-name prefixes of ``model``'s classifier, as timm's ``pretrained_cfg`` names it."""
    head = getattr(model, "pretrained_cfg", {}).get("classifier")
    return [head] if isinstance(head, str) else list(head or [])


def setup_head(model: nn.Module, kind: str, num_classes: int, seed: int = 0) -> Head:
    """Prepare ``model``'s classifier for ``kind``; call before ``methods.apply``, then ``head.attach``."""
    if kind not in HEADS:
        raise HeadError(f"head {kind!r} unknown; choose one of: {', '.join(HEADS)}")
    source = int(getattr(model, "num_classes", 0) or 0)
    if kind == "linear":
        model.reset_classifier(num_classes)
        return Head(kind, head_prefixes_of(model), num_classes, source)
    if source <= 0:
        raise HeadError(f"head={kind} reads the pretrained classifier, but {type(model).__name__} has none")
    if kind == "source":
        if num_classes != source:
            raise HeadError(
                f"head=source reads the pretrained {source}-class classifier as is, but the task has "
                f"{num_classes} classes; use head=random|flm|ilm to map onto it, or head=linear")
        return Head(kind, [], num_classes, source)
    if num_classes > source:
        raise HeadError(f"head={kind} maps {num_classes} target classes one-to-one onto the "
                        f"{source} source classes; there are too few; use head=linear")
    g = torch.Generator().manual_seed(seed)
    # random: the final map; flm/ilm: a placeholder until the first on_epoch_start computes it.
    mapping = torch.randperm(source, generator=g)[:num_classes] if kind == "random" else torch.arange(num_classes)
    return Head(kind, [], num_classes, source, mapping=mapping)
