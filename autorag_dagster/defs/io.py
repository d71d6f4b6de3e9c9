"""Storage of asset values between steps: one readable JSON file per asset and audio file.

Every partitioned asset returns ``{partition_key: pydantic model}`` and its inputs arrive the
same way. One shape serves a run of one file (a sensor's run) and a run of many (a single-run
backfill, where each model loads once for all files). Where the files land is the data
layout's business (``autorag_dagster.layout``): next to the exports, so a person can read what
every stage produced.
"""

from __future__ import annotations

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import BaseModel

from autorag_dagster.layout import DataLayout


class PartitionedModelIOManager(ConfigurableIOManager):
    """Reads and writes ``{partition_key: BaseModel}`` as JSON, one file per partition."""

    data_dir: str

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    def handle_output(self, context: OutputContext, obj: dict[str, BaseModel] | None) -> None:
        if obj is None:
            return
        asset = context.asset_key.path[-1]
        expected = set(context.asset_partition_keys)
        if set(obj) != expected:
            raise ValueError(f"{asset} returned results for {sorted(obj)} but the run covers {sorted(expected)}")
        stored = [self.layout.write_stored(asset, key, value) for key, value in obj.items()]
        if len(stored) == 1:
            context.add_output_metadata({"stored_at": str(stored[0])})

    def load_input(self, context: InputContext) -> dict[str, BaseModel]:
        asset = context.asset_key.path[-1]
        return {key: self.layout.read_stored(asset, key) for key in context.asset_partition_keys}
