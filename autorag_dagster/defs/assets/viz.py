"""``viz``: a self-contained HTML page per file, the index of all pages, and a PNG preview."""

import base64
from pathlib import Path

from dagster import AssetExecutionContext, MetadataValue

from autorag_dagster.core.speakers import with_names
from autorag_dagster.core.types import AudioInfo, SpeakerTranscript, TopicTree, VizPage
from autorag_dagster.core.viz import write_index, write_page, write_preview_png
from autorag_dagster.defs.assets.common import per_file, per_file_asset, report
from autorag_dagster.defs.resources import StorageResource


@per_file_asset(group="search", code_version="viz-2", kinds={"html"})
def viz(
    context: AssetExecutionContext,
    audio: dict[str, AudioInfo],
    speaker_transcript: dict[str, SpeakerTranscript],
    topic_tree: dict[str, TopicTree],
    storage: StorageResource,
) -> dict[str, VizPage]:
    """Speaker timeline, topic bands (L1 above L2), titles, summaries and the transcript; offline."""
    layout = storage.layout

    def one(key: str) -> VizPage:
        named = with_names(speaker_transcript[key], speaker_transcript[key].names)  # the speakers' names
        page = write_page(layout.viz_dir, named, topic_tree[key], audio[key])
        png = write_preview_png(named, topic_tree[key], layout.file_dir(key) / "preview.png")
        return VizPage(key=key, page=str(page), index=str(layout.viz_index), preview_png=str(png))

    pages = per_file(context, speaker_transcript, one, what="Rendering the page")
    index = write_index(layout.viz_dir)

    def preview(page: VizPage) -> MetadataValue:
        encoded = base64.b64encode(Path(page.preview_png).read_bytes()).decode()
        return MetadataValue.md(f"![preview](data:image/png;base64,{encoded})")

    report(
        context,
        pages,
        common={"index": MetadataValue.path(str(index))},
        one=lambda key, page: {"page": MetadataValue.path(page.page), "preview": preview(page)},
    )
    return pages
