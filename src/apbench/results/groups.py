"""Task groups in tables: which groups a table's datasets form, in what order, and their means.

The groups come from ``apbench.task_groups`` (VTAB-1k's natural / specialized / structured, the pkg
suite's natural / structured): a table whose datasets all belong to one suite gets that suite's groups;
datasets of no one suite fall back to VTAB's groups where their records name one of them. A group mean
enters the mean of groups only when complete, so a half-finished sweep never passes for a full score;
the '(k/n)' suffix shows what is missing.
"""
from __future__ import annotations

import pandas as pd

from ..task_groups import SUITE_GROUPS, groups_of, suite_of

MISSING_CELL = "-"
VTAB_GROUPS = groups_of("vtab1k")


def table_groups(groups: pd.Series) -> tuple[str, ...]:
    """The groups, in order, of a table whose ``groups`` maps dataset -> the group its records name."""
    suite = suite_of(list(groups.index))
    if suite:
        return groups_of(suite)
    return VTAB_GROUPS if groups.isin(VTAB_GROUPS).any() else ()


def mean_text(values: pd.Series, expected: int) -> str:
    """Mean of the available values; '(k/n)' says it rests on k of the n expected entries."""
    k = int(values.notna().sum())
    if k == 0:
        return MISSING_CELL
    return f"{values.mean():.2f}" + ("" if k == expected else f" ({k}/{expected})")


def group_summary(means: pd.DataFrame, groups: pd.Series, order: tuple[str, ...]) -> pd.DataFrame:
    """Rows 'mean: <group>' for each of ``order`` and 'mean of groups' (when ``order`` names any), then
    'mean over datasets'; ``means`` is datasets x labels, ``groups`` dataset -> group."""
    def row(frame: pd.DataFrame, n: int) -> pd.Series:
        return pd.Series({label: mean_text(frame[label], n) for label in means.columns}, dtype=object)

    rows, complete_means = {}, {}
    for g in order:
        members = means[groups.reindex(means.index) == g]
        rows[f"mean: {g}"] = row(members, len(members))
        complete = (members.notna().sum() == len(members)) & (len(members) > 0)
        complete_means[g] = members.mean().where(complete)
    if order:  # no groups: the mean over datasets alone
        rows["mean of groups"] = row(pd.DataFrame(complete_means).T, len(order))
    rows["mean over datasets"] = row(means, len(means))
    return pd.DataFrame(rows).T


# a suite's declared order of its tasks within a group (task_groups), e.g. pkg_fashion before pkg_digits
DECLARED = {prefix + t: i for prefix, groups in SUITE_GROUPS.values() for tasks in groups.values()
            for i, t in enumerate(tasks)}


def dataset_order(groups: pd.Series, order: tuple[str, ...]) -> list[str]:
    """Datasets by group (in ``order``, then other groups by name), then as their suite declares them,
    then by name."""
    rank = {g: i for i, g in enumerate(order)}
    return sorted(groups.index, key=lambda d: (rank.get(groups[d], len(rank)), str(groups[d]),
                                               DECLARED.get(d, len(DECLARED)), d))
