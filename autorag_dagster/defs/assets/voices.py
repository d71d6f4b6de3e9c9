"""Speakers across the library: ``speaker_names`` (the user's names file, observed) and ``voices``
(every file's voice prints clustered into identities with stable IDs)."""

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
    observable_source_asset,
)

from autorag_dagster.core.speakers import digest, read_speakers
from autorag_dagster.core.timefmt import clock
from autorag_dagster.core.types import Diarization
from autorag_dagster.core.voices import VoiceRegistry, changed_files, cluster_voices, collect_voices
from autorag_dagster.defs.assets.speech import diarization
from autorag_dagster.defs.jobs import LIBRARY_GROUP
from autorag_dagster.defs.resources import StorageResource, VoicesResource


@observable_source_asset(
    group_name=LIBRARY_GROUP,
    automation_condition=AutomationCondition.cron_tick_passed("* * * * *"),  # observed every minute
    description="<audio folder>/speakers.yaml: names of voices and of files' speakers, and diarizer hints. "
    "Its data version is the file's hash; a sensor re-materialises what shows the names it changed.",
)
def speaker_names(storage: StorageResource) -> DataVersion:
    return DataVersion(digest(storage.speakers_file))


def registry_table(registry: VoiceRegistry, names: dict[str, str]) -> MetadataValue:
    rows = ["| identity | name | talk time | files |", "| --- | --- | --- | --- |"]
    for identity in registry.identities:
        files = ", ".join(f"{m.file} ({m.speaker})" for m in identity.members)
        rows.append(f"| {identity.id} | {names.get(identity.id, '')} | {clock(identity.talk_s)} | {files} |")
    return MetadataValue.md("\n".join(rows))


# Eager, except that a file without a diarization (new, or failed) does not hold the others back:
# the identities are rebuilt whenever any file's diarization lands and no diarization is running.
AFTER_DIARIZATIONS = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())


@asset(
    deps=[diarization],
    group_name=LIBRARY_GROUP,
    automation_condition=AFTER_DIARIZATIONS,
    kinds={"numpy"},
)
def voices(
    context: AssetExecutionContext, storage: StorageResource, voice_clustering: VoicesResource
) -> MaterializeResult:
    """Every file's voice prints clustered into library-wide identities (VOICE_0001, ...); an identity
    keeps its ID when files arrive. Runs after the files' diarizations land."""
    layout = storage.layout
    diarizations = list(layout.stored_values("diarization", Diarization).values())
    previous = layout.read_voice_registry()
    registry = cluster_voices(collect_voices(diarizations), previous, voice_clustering.config)
    layout.write_voice_registry(registry)
    changed = changed_files(previous, registry)
    without = sorted(d.key for d in diarizations if not d.voices)
    if without:
        context.log.warning(
            f"{len(without)} file(s) have no voice prints (diarized before voices were kept): "
            f"{', '.join(without[:10])}; re-materialise their diarization."
        )
    names = read_speakers(storage.speakers_file).identities
    return MaterializeResult(
        metadata={
            "identities": len(registry.identities),
            "files": len(diarizations),
            "threshold": registry.threshold,
            "min_talk_s": registry.min_talk_s,
            "table": registry_table(registry, names),
            "changed_files": MetadataValue.json(changed),
            "registry": MetadataValue.path(str(layout.voices_registry)),
        }
    )
