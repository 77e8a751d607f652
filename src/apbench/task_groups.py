"""The task groups of each multi-task suite, in table order: one declaration that the data manifest, the
pkg suite's registry and the results tables share (a module of its own, below all of them and free of
heavy imports, so ``apbench results`` knows the groups without loading a dataset module).

A suite's datasets are named ``<prefix><task>``; a table whose grouped datasets all carry one suite's
prefix gets that suite's group means (``results.tables``).
"""
from __future__ import annotations

SUITE_GROUPS: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    # VTAB-1k (Zhai et al. 2019): 7 natural, 4 specialized, 8 structured tasks.
    "vtab1k": ("vtab1k_", {
        "natural": ("caltech101", "cifar100", "dtd", "oxford_flowers102", "oxford_iiit_pet", "svhn", "sun397"),
        "specialized": ("patch_camelyon", "eurosat", "resisc45", "diabetic_retinopathy"),
        "structured": ("clevr_count", "clevr_dist", "dmlab", "kitti", "dsprites_loc", "dsprites_ori",
                       "smallnorb_azi", "smallnorb_ele"),
    }),
    # The offline pkg suite (docs/pkg_suite.md): images from registry packages. natural: class labels
    # of real photographs and scans; structured: labels from the geometry of real Fashion-MNIST objects
    # pasted on a canvas (after VTAB's structured tasks).
    "pkg": ("pkg_", {
        "natural": ("fashion", "digits", "texture"),
        "structured": ("count", "xpos", "rotation", "size", "pair_distance"),
    }),
}


def groups_of(suite: str) -> tuple[str, ...]:
    return tuple(SUITE_GROUPS[suite][1])


def members(suite: str) -> dict[str, list[str]]:
    """{group: [dataset config names]} of ``suite``."""
    prefix, groups = SUITE_GROUPS[suite]
    return {g: [prefix + t for t in tasks] for g, tasks in groups.items()}


def group_of(dataset: str) -> str | None:
    """The declared group of a dataset config name, or None."""
    for prefix, groups in SUITE_GROUPS.values():
        for g, tasks in groups.items():
            if dataset.startswith(prefix) and dataset[len(prefix):] in tasks:
                return g
    return None


def suite_of(datasets) -> str | None:
    """The one suite every name of ``datasets`` belongs to, or None (mixed, or none)."""
    found = {name for name, (prefix, groups) in SUITE_GROUPS.items()
             for d in datasets if d.startswith(prefix) and group_of(d)}
    names = list(datasets)
    if len(found) == 1 and all(group_of(d) for d in names):
        return found.pop()
    return None
