"""The HTML page in a real headless Chromium (Debian's), the index, and the PNG preview."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from autorag_dagster.core.checks import check_viz_page
from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree, Utterance
from autorag_dagster.core.viz import page_relpath, render_page, write_index, write_page, write_preview_png
from tests.core.test_checks import PUNCTUATED_TITLES, punctuated
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.search_corpus import build_file

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        yield context
        context.close()


@pytest.fixture()
def open_page(browser):
    """Open a local file; fail on script errors; record any request leaving the file system."""
    pages, outside, errors = [], [], []

    def route(route):
        if not route.request.url.startswith("file://"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def open_(path, fragment=""):
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.route("**/*", route)
        page.goto(path.as_uri() + fragment)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    assert outside == [], "the page must work offline"
    assert errors == []


@pytest.fixture()
def two_level_file():
    transcript, tree = build_file("family/mountain-weekend.mp3")
    first = tree.nodes[0]
    first.children = [
        TopicNode(
            id="1.1",
            level=2,
            start=first.start,
            end=10.0,
            title="Two trails compared",
            summary="Ridge or lake: the lake wins.",
        ),
        TopicNode(
            id="1.2",
            level=2,
            start=10.0,
            end=first.end,
            title="An early start",
            summary="They leave the car park at seven.",
        ),
    ]
    tree.summary = "A family plans a weekend in the mountains."
    return transcript, tree


def test_every_topic_is_shown_and_a_click_reveals_its_summary_and_text(tmp_path, open_page, two_level_file):
    transcript, tree = two_level_file
    page = open_page(write_page(tmp_path, transcript, tree))

    for node in tree.walk():
        entry = page.locator(f'#outline [data-select-topic="{node.id}"] .topic-title')
        assert entry.is_visible() and entry.inner_text() == node.title
        band = page.locator(f'#timeline .band[data-select-topic="{node.id}"]')
        assert band.is_visible() and band.inner_text() == node.title
        assert page.locator(f'[id="topic-{node.id}"]').is_hidden()
    assert page.locator("#timeline .lane-label", has_text="Topics L1").is_visible()
    assert page.locator("#timeline .lane-label", has_text="Topics L2").is_visible()
    assert page.locator("#transcript .utt").count() == len(transcript.utterances)

    target = tree.nodes[2]
    page.locator(f'#timeline .band[data-select-topic="{target.id}"]').click()
    detail = page.locator(f'[id="topic-{target.id}"]')
    assert detail.is_visible() and target.summary in detail.inner_text()
    assert page.locator(f'[id="topic-{tree.nodes[1].id}"]').is_hidden()
    highlighted = page.locator("#transcript .utt.in-topic")
    expected = [u.text for u in transcript.utterances if u.start < target.end and u.end > target.start]
    assert highlighted.locator(".text").all_inner_texts() == expected
    assert highlighted.first.evaluate("el => el.getBoundingClientRect().top") < 800  # scrolled to it

    page.locator('#outline [data-select-topic="1.2"]').click()
    assert page.locator('[id="topic-1.2"]').is_visible() and detail.is_hidden()
    assert "car park at seven" in page.locator('[id="topic-1.2"] .topic-summary').inner_text()


def long_meeting() -> SpeakerTranscript:
    """Sixty utterances of four seconds, one second of silence between them: 0-4, 5-9, ..."""
    utterances = [
        Utterance(speaker=f"SPEAKER_0{i % 2}", start=5.0 * i, end=5.0 * i + 4, text=f"Point number {i} of the plan.")
        for i in range(60)
    ]
    return SpeakerTranscript(key="long meeting.wav", duration_s=300.0, language="en", utterances=utterances)


def marked(page) -> list[str]:
    return page.locator("#transcript .utt.at-time .text").all_inner_texts()


def in_view(page, text: str) -> bool:
    top = page.locator("#transcript .utt", has_text=text).evaluate("el => el.getBoundingClientRect().top")
    return 0 <= top < page.viewport_size["height"]


def test_a_time_in_the_address_scrolls_to_and_highlights_the_transcript_there(tmp_path, open_page):
    path = write_page(tmp_path, long_meeting())
    page = open_page(path, "#t=72")

    assert marked(page) == ["Point number 14 of the plan."]  # 70-74 s
    assert in_view(page, "Point number 14 ") and page.evaluate("window.scrollY") > 0
    assert page.locator("#transcript .utt.at-time").get_attribute("aria-current") == "time"
    assert not in_view(page, "Point number 0 ")

    # A later change of the address moves the highlight (hashchange); minutes:seconds work too.
    page.evaluate("window.location.hash = '#t=4:05'")
    page.wait_for_function("document.querySelector('.utt.at-time .text').textContent.includes('number 49 ')")
    assert marked(page) == ["Point number 49 of the plan."] and in_view(page, "Point number 49 ")

    # A range highlights every utterance it overlaps; a time in silence, the last one before it.
    for fragment, expected in (
        ("#t=npt:100,112", [20, 21, 22]),
        ("#t=0:01:04.5", [12]),
        ("#t=0", [0]),
        ("#t=1000", [59]),
    ):
        page.evaluate(f"window.location.hash = '{fragment}'")
        texts = [f"Point number {i} of the plan." for i in expected]
        page.wait_for_function(f"document.querySelectorAll('.utt.at-time').length === {len(expected)} && "
                               f"document.querySelector('.utt.at-time .text').textContent === {texts[0]!r}")  # fmt: skip
        assert marked(page) == texts, fragment
        assert in_view(page, texts[0]), fragment

    # Anything else in the address changes nothing and raises no error.
    for fragment in ("#t=abc", "#t=5,2", "#u-3", "#"):
        page.evaluate(f"window.location.hash = '{fragment}'")
        page.wait_for_timeout(50)
        assert marked(page) == ["Point number 59 of the plan."], fragment

    # Each timestamp links to its own time.
    page.locator("#transcript .utt", has_text="Point number 33 ").locator("a.ts").click()
    page.wait_for_function("window.location.hash === '#t=165.0'")
    page.wait_for_function("document.querySelector('.utt.at-time .text').textContent.includes('number 33 ')")
    assert marked(page) == ["Point number 33 of the plan."]


def test_a_time_in_the_address_of_a_page_opened_fresh_in_a_new_tab(tmp_path, open_page):
    path = write_page(tmp_path, long_meeting())
    page = open_page(path, "#t=250,258")
    assert marked(page) == ["Point number 50 of the plan.", "Point number 51 of the plan."]
    assert in_view(page, "Point number 50 ")


def test_transcript_and_llm_text_stay_text(tmp_path, open_page):
    transcript = SpeakerTranscript(
        key="evil & 'odd' <name>.wav",
        duration_s=20,
        language="en",
        utterances=[
            Utterance(speaker="SPEAKER_00", start=0, end=5, text=SCRIPT),
            Utterance(speaker="<b>SPEAKER_01</b>", start=5, end=10, text=f"{IMG} & </li></ol>"),
            Utterance(speaker="SPEAKER_00", start=10, end=20, text='{{ 7 * 7 }} "quoted"'),
        ],
    )
    tree = TopicTree(
        key=transcript.key,
        duration_s=20,
        title=f"Title {SCRIPT}",
        summary=f"File summary {IMG}",
        nodes=[
            TopicNode(id="1", level=1, start=0, end=10, title=IMG, summary=f"</article>{SCRIPT}"),
            TopicNode(id="2", level=1, start=10, end=20, title='" onclick="window.__pwned=4', summary="plain"),
        ],
    )
    html = render_page(transcript, tree)
    assert SCRIPT not in html and IMG not in html and "<b>SPEAKER_01" not in html
    page = open_page(write_page(tmp_path, transcript, tree))

    for node in tree.nodes:
        page.locator(f'#timeline .band[data-select-topic="{node.id}"]').click()
    page.locator('#outline [data-select-topic="1"]').click()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.locator("script").count() == 1  # the page's own
    assert page.get_by_text(SCRIPT, exact=True).is_visible()
    assert page.get_by_text(f"{IMG} & </li></ol>", exact=True).is_visible()
    assert page.get_by_text('{{ 7 * 7 }} "quoted"', exact=True).is_visible()
    assert page.locator("h1").inner_text() == f"Title {SCRIPT}"
    assert page.locator('[id="topic-1"] .topic-summary').inner_text() == f"</article>{SCRIPT}"
    assert page.locator("#transcript .speaker").nth(1).inner_text() == "<b>SPEAKER_01</b>"
    assert page.locator(".crumbs .key").inner_text() == transcript.key


def test_index_lists_and_links_every_page(tmp_path, open_page, two_level_file):
    keys = ["kitchen/dinner-party.wav", "meetings/q3 review #3.wav"]
    for key in keys:
        transcript, tree = build_file(key.replace(" review #3", "-review"))
        write_page(tmp_path, transcript.model_copy(update={"key": key}), tree)
    write_page(tmp_path, *two_level_file)
    index = write_index(tmp_path)
    write_page(tmp_path, *build_file("kitchen/dinner-party.wav"))  # a rerun does not duplicate it
    write_index(tmp_path)

    page = open_page(index)
    rows = page.locator("#files tbody tr")
    assert rows.count() == 3
    assert page.locator("#files a").all_inner_texts() == sorted([*keys, "family/mountain-weekend.mp3"])
    assert "A family plans a weekend in the mountains." in rows.nth(0).inner_text()

    for key in keys:
        page.locator("#files a", has_text=key).click()
        page.wait_for_load_state()
        assert page.url == (tmp_path / page_relpath(key)).as_uri()
        assert page.locator(".crumbs .key").inner_text() == key
        page.locator(".crumbs a").click()
        page.wait_for_load_state()
        assert page.url == index.as_uri()
    sidecar = json.loads((tmp_path / "meetings/q3 review #3.wav.page.json").read_text())
    assert (sidecar["topics"], sidecar["speakers"]) == (3, ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"])


def test_pages_stay_inside_the_viz_folder(tmp_path):
    transcript, tree = build_file("kitchen/dinner-party.wav")
    with pytest.raises(ValueError, match="outside"):
        write_page(tmp_path / "viz", transcript.model_copy(update={"key": "../escape.wav"}), tree)
    assert not (tmp_path / "escape.wav.html").exists()


def test_preview_png(tmp_path, two_level_file):
    transcript, tree = two_level_file
    tree.nodes[1].title = "Costs: $5 and $10 per person"  # '$' must not start matplotlib math
    path = write_preview_png(transcript, tree, tmp_path / "previews" / "weekend.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width == 1000 and image.height > 200

    bare = write_preview_png(transcript, None, tmp_path / "bare.png")
    assert bare.stat().st_size > 0


def test_the_page_check_reads_titles_and_text_as_chromium_does(tmp_path, open_page):
    """Titles and transcript text holding ' & < > " : Chromium shows each one whole, and so does the check."""
    tree, transcript = punctuated()
    path = write_page(tmp_path, transcript, tree)
    page = open_page(path)
    assert page.locator("#outline .topic-title").all_text_contents() == [n.title for n in tree.walk()]
    assert page.locator("#transcript .text").all_text_contents() == [u.text for u in transcript.utterances]
    assert check_viz_page(path.read_text(encoding="utf-8"), tree, transcript) == []

    # the same page with one title written raw: Chromium shows a bold element, and the check misses the title
    raw = tmp_path / "raw.html"
    raw.write_text(
        path.read_text(encoding="utf-8").replace("&lt;b&gt;", "<b>").replace("&lt;/b&gt;", "</b>"), encoding="utf-8"
    )
    shown = open_page(raw).locator("#outline .topic-title").all_text_contents()
    title = PUNCTUATED_TITLES[4]
    assert title not in shown and title.replace("<b>", "").replace("</b>", "") in shown
    assert check_viz_page(raw.read_text(encoding="utf-8"), tree, transcript) == [
        f"topic 5 {title!r} is not on the page"
    ]
