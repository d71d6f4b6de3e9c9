"""One dynamic partition per audio file, keyed by its path relative to the audio root."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import BackfillPolicy, DagsterInstance, DynamicPartitionsDefinition

audio_files = DynamicPartitionsDefinition(name="audio_files")

# A backfill over many files runs as one run: each stage handles every file before the next
# stage starts, so each model (Whisper, diarizer, LLM, embedder) loads once per run.
single_run = BackfillPolicy.single_run()

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def contiguous_range(instance: DagsterInstance, keys: Sequence[str]) -> tuple[str, str]:
    """The first and last of ``keys`` once they form one block in the partition order.

    A run covers a range of partitions (Dagster has no run over an arbitrary subset), so files
    that are not neighbours in the order they were added are moved, in sorted order, to the end
    of it (deleted and added again: only their place in the list changes; their materialisation
    history is kept). Keys that are not partitions yet are added.
    """
    wanted = sorted(dict.fromkeys(keys))
    if not wanted:
        raise ValueError("no partition keys given")
    current = list(instance.get_dynamic_partitions(audio_files.name))
    index = {key: i for i, key in enumerate(current)}
    positions = sorted(index[k] for k in wanted if k in index)
    if len(positions) == len(wanted) and positions[-1] - positions[0] == len(wanted) - 1:
        return current[positions[0]], current[positions[-1]]
    for key in wanted:
        if key in index:
            instance.delete_dynamic_partition(audio_files.name, key)
    instance.add_dynamic_partitions(audio_files.name, wanted)  # one batch, at the end, in this order
    return wanted[0], wanted[-1]


def range_tags(instance: DagsterInstance, keys: Sequence[str]) -> dict[str, str]:
    """Run tags that make one run cover exactly ``keys``."""
    first, last = contiguous_range(instance, keys)
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def covered_keys(instance: DagsterInstance, partition_key: str | None, tags: Mapping[str, str]) -> list[str]:
    """The files a run (or run request) of the per-file job covers: its partition, or its range."""
    if partition_key is not None:
        return [partition_key]
    order = list(instance.get_dynamic_partitions(audio_files.name))
    return order[order.index(tags[RANGE_START_TAG]) : order.index(tags[RANGE_END_TAG]) + 1]
