"""The frame every per-file asset shares: its decorator, per-file iteration with per-file
error reports, and the one-file / many-files switch of its metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from dagster import AssetExecutionContext, Failure, MetadataValue, asset

from autorag_dagster.core.audio import AudioDecodeError
from autorag_dagster.core.keys import InvalidKeyError
from autorag_dagster.defs.metadata import per_file_table
from autorag_dagster.defs.partitions import audio_files, single_run
from autorag_dagster.ollama.errors import OllamaError

T = TypeVar("T")

# The op tag of GPU steps: one run holds one GPU, so its GPU steps never overlap, whatever the
# limit of the pool `gpu` (1 on one box; the number of GPU nodes on Kubernetes).
GPU_TAG = "autorag/gpu"

# Errors whose message already tells a person what is wrong and what to do.
LEGIBLE_ERRORS: tuple[type[BaseException], ...] = (AudioDecodeError, InvalidKeyError, OllamaError)


def per_file_asset(*, group: str, code_version: str, kinds: set[str] | None = None, gpu: bool = False, **options: Any):
    """``@asset`` for one value per audio file: one dynamic partition per file, values stored as
    JSON by ``model_io``, and a backfill over many files run as ONE run (each model loads once).
    ``gpu=True`` puts the step in the ``gpu`` pool, which serialises GPU steps across runs, and tags
    it ``GPU_TAG``, which the executor limits to one step at a time within a run (defs/__init__.py)."""
    if gpu:
        options["op_tags"] = {**options.get("op_tags", {}), GPU_TAG: "true"}
    return asset(
        partitions_def=audio_files,
        backfill_policy=single_run,
        io_manager_key="model_io",
        group_name=group,
        code_version=code_version,
        kinds=kinds,
        pool="gpu" if gpu else None,
        **options,
    )


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LEGIBLE_ERRORS) else f"{type(exc).__name__}: {exc}"


def per_file(
    context: AssetExecutionContext, keys: Iterable[str], work: Callable[[str], T], *, what: str
) -> dict[str, T]:
    """Run ``work`` for each partition key; a failing file never stops the others.

    When any file failed, the step fails afterwards with one line per failed file (what
    the other files produced is already written to disk and their caches are warm).
    """
    keys = list(keys)
    results: dict[str, T] = {}
    failures: dict[str, str] = {}
    for index, key in enumerate(keys, 1):
        if len(keys) > 1:
            context.log.info(f"[{index}/{len(keys)}] {what}: {key}")
        try:
            results[key] = work(key)
        except OllamaError as exc:  # the server or a model, not this file: stop at once
            raise Failure(description=str(exc), allow_retries=False) from None
        except LEGIBLE_ERRORS as exc:
            failures[key] = describe(exc)
            context.log.error(f"{what} failed for {key!r}: {failures[key]}")
        except Exception as exc:  # noqa: BLE001 - reported per file, then raised as one Failure
            failures[key] = describe(exc)
            context.log.exception(f"{what} failed for {key!r}")
    if failures:
        lines = "\n".join(f"- {key}: {reason}" for key, reason in failures.items())
        raise Failure(
            description=f"{what} failed for {len(failures)} of {len(keys)} file(s):\n{lines}",
            metadata={"failed_files": MetadataValue.json(failures)},
            allow_retries=False,
        )
    return results


def report(
    context: AssetExecutionContext,
    results: Mapping[str, T],
    *,
    one: Callable[[str, T], Mapping[str, Any]],
    row: Callable[[str, T], Mapping[str, Any]] | None = None,
    common: Mapping[str, Any] | None = None,
) -> None:
    """The step's metadata: ``common``, plus ``one(key, value)`` when the run covers one file,
    or a table with a ``row(key, value)`` per file when it covers several."""
    metadata = dict(common or {})
    if len(results) == 1:
        metadata |= one(*next(iter(results.items())))
    elif row is not None:
        metadata["files"] = per_file_table([{"file": key, **row(key, value)} for key, value in results.items()])
    context.add_output_metadata(metadata)
