"""What every partitioned asset shares: per-file iteration with per-file error reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from dagster import AssetExecutionContext, Failure, MetadataValue

from autorag_dagster.core.audio import AudioDecodeError
from autorag_dagster.core.keys import InvalidKeyError
from autorag_dagster.ollama.errors import OllamaError

T = TypeVar("T")

# Errors whose message already tells a person what is wrong and what to do.
LEGIBLE_ERRORS: tuple[type[BaseException], ...] = (AudioDecodeError, InvalidKeyError, OllamaError)


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
