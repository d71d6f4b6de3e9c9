"""``viz``: a self-contained HTML page per file, the index of all pages, and a PNG preview."""

import base64

from dagster import AssetExecutionContext, MetadataValue, asset

from autorag_dagster.core.types import AudioInfo, SpeakerTranscript, TopicTree, VizPage
from autorag_dagster.core.viz import write_index, write_page, write_preview_png
from autorag_dagster.defs.assets.common import per_file
from autorag_dagster.defs.io import file_dir
from autorag_dagster.defs.partitions import audio_files, single_run
from autorag_dagster.defs.resources import StorageResource


@asset(
    partitions_def=audio_files,
    backfill_policy=single_run,
    io_manager_key="model_io",
    group_name="search",
    code_version="viz-1",
    kinds={"html"},
)
def viz(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speaker_transcript: dict[str, SpeakerTranscript],
    topic_tree: dict[str, TopicTree],
    storage: StorageResource,
) -> dict[str, VizPage]:
    """Speaker timeline, topic bands (L1 above L2), titles, summaries and the transcript; offline."""

    def one(key: str) -> VizPage:
        page = write_page(storage.viz_dir, speaker_transcript[key], topic_tree[key], audio[key])
        png = write_preview_png(speaker_transcript[key], topic_tree[key], file_dir(storage.data_dir, key) / "preview.png")
        return VizPage(key=key, page=str(page), index=str(storage.viz_dir / "index.html"), preview_png=str(png))

    pages = per_file(context, speaker_transcript, one, what="Rendering the page")
    index = write_index(storage.viz_dir)
    metadata: dict = {"index": MetadataValue.path(str(index))}
    if len(pages) == 1:
        page = next(iter(pages.values()))
        encoded = base64.b64encode(open(page.preview_png, "rb").read()).decode()
        metadata |= {"page": MetadataValue.path(page.page), "preview": MetadataValue.md(f"![preview](data:image/png;base64,{encoded})")}
    context.add_output_metadata(metadata)
    return pages
