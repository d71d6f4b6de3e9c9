"""Storage of asset values between steps: one readable JSON file per asset and audio file.

Every partitioned asset returns ``{partition_key: pydantic model}`` and its inputs arrive the
same way. One shape serves a run of one file (a sensor's run) and a run of many (a single-run
backfill, where each model loads once for all files). Files land under
``<data_dir>/files/<folder for the key>/assets/<asset>.json`` next to the exports, so a person can read
what every stage produced.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import BaseModel

from autorag_dagster.core.keys import folder_name_for_key


def file_dir(data_dir: str | Path, key: str) -> Path:
    """The folder that holds every artefact of one audio file."""
    return Path(data_dir) / "files" / folder_name_for_key(key)


def stored_value_path(data_dir: str | Path, asset: str, key: str) -> Path:
    """Where the value of ``asset`` for partition ``key`` is stored."""
    return file_dir(data_dir, key) / "assets" / f"{asset}.json"


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
    os.replace(tmp, path)


class PartitionedModelIOManager(ConfigurableIOManager):
    """Reads and writes ``{partition_key: BaseModel}`` as JSON, one file per partition."""

    data_dir: str

    def _path(self, asset: str, key: str) -> Path:
        return stored_value_path(self.data_dir, asset, key)

    def handle_output(self, context: OutputContext, obj: dict[str, BaseModel] | None) -> None:
        if obj is None:
            return
        asset = context.asset_key.path[-1]
        expected = set(context.asset_partition_keys)
        if set(obj) != expected:
            raise ValueError(
                f"{asset} returned results for {sorted(obj)} but the run covers {sorted(expected)}"
            )
        for key, value in obj.items():
            cls = type(value)
            write_json_atomic(
                self._path(asset, key),
                {"type": f"{cls.__module__}:{cls.__qualname__}", "value": value.model_dump(mode="json")},
            )
        if len(obj) == 1:
            context.add_output_metadata({"stored_at": str(self._path(asset, next(iter(obj))))})

    def load_input(self, context: InputContext) -> dict[str, BaseModel]:
        asset = context.asset_key.path[-1]
        out: dict[str, BaseModel] = {}
        for key in context.asset_partition_keys:
            path = self._path(asset, key)
            if not path.exists():
                raise FileNotFoundError(
                    f"No stored {asset} for {key!r} at {path}: materialise {asset} for this file first."
                )
            payload = json.loads(path.read_text(encoding="utf-8"))
            module, _, name = payload["type"].partition(":")
            cls = getattr(importlib.import_module(module), name)
            out[key] = cls.model_validate(payload["value"])
        return out
