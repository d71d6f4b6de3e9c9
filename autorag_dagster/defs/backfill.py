"""Launching a backfill from code: the one place that touches Dagster's internal backfill API.

Dagster has no public function that submits a partition backfill from a schedule or sensor
(the UI and GraphQL do it through ``PartitionBackfill``), so it is imported here alone and
guarded: if a Dagster upgrade moves or changes it, the error says so plainly, and
``tests/defs/test_automation.py`` fails on the upgrade rather than at 02:00.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from dagster import AssetKey, DagsterInstance


class BackfillApiError(RuntimeError):
    """Dagster's internal backfill API is not what this project was written against."""


def _internals():
    try:
        from dagster._core.execution.backfill import PartitionBackfill
        from dagster._core.utils import make_new_backfill_id
    except ImportError as exc:  # pragma: no cover - only on an incompatible Dagster
        raise BackfillApiError(
            f"This Dagster version has no PartitionBackfill/make_new_backfill_id where expected ({exc}); "
            "pin the Dagster version in pyproject.toml or update autorag_dagster/defs/backfill.py."
        ) from exc
    if not hasattr(PartitionBackfill, "from_asset_partitions"):  # pragma: no cover
        raise BackfillApiError("PartitionBackfill.from_asset_partitions is gone in this Dagster version.")
    return PartitionBackfill, make_new_backfill_id


def launch_backfill(
    instance: DagsterInstance,
    asset_graph,
    *,
    partition_keys: Sequence[str],
    assets: Sequence[AssetKey],
    title: str,
    description: str = "",
    tags: Mapping[str, str] | None = None,
) -> str:
    """Submit one backfill of ``assets`` over ``partition_keys``; the daemon runs it. Returns its id."""
    partition_backfill, new_id = _internals()
    backfill_id = new_id()
    try:
        backfill = partition_backfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=asset_graph,
            partition_names=list(partition_keys),
            asset_selection=list(assets),
            backfill_timestamp=time.time(),
            tags=dict(tags or {}),
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=title,
            description=description,
            run_config=None,
        )
    except TypeError as exc:  # a changed signature
        raise BackfillApiError(f"PartitionBackfill.from_asset_partitions changed its arguments: {exc}") from exc
    instance.add_backfill(backfill)
    return backfill_id
