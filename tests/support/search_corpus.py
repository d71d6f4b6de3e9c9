"""A small corpus of multi-speaker conversations with known topics, and paraphrased questions."""

from __future__ import annotations

from autorag_dagster.core.types import SpeakerTranscript, TopicNode, TopicTree, Utterance

SECONDS_PER_WORD = 0.4
PAUSE = 0.6

# file key -> topics: (title, summary, [(speaker, spoken text), ...])
CORPUS: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {
    "kitchen/dinner-party.wav": [
        (
            "Cooking the spaghetti",
            "Ana explains how to boil spaghetti and Ben asks about salt and timing.",
            [
                (
                    "SPEAKER_00",
                    "Tonight I am making spaghetti, so first the big pot of water has to come to a rolling boil.",
                ),
                ("SPEAKER_01", "Do you put salt in the water or is that a myth?"),
                (
                    "SPEAKER_00",
                    "A good handful of salt, the water should taste like the sea. Then the spaghetti goes in and you stir it so the strands do not stick together.",
                ),
                ("SPEAKER_01", "And how do you know when it is done?"),
                (
                    "SPEAKER_00",
                    "About nine minutes. Bite a strand, it should still have a little resistance in the middle, that is al dente. Keep a cup of the starchy water before you drain it.",
                ),
            ],
        ),
        (
            "Choosing the wine",
            "They pick a bottle to serve and talk about the guests' tastes.",
            [
                ("SPEAKER_01", "What are we pouring for the guests, red or white?"),
                (
                    "SPEAKER_00",
                    "Maria only drinks white, so let us open the Sauvignon Blanc and keep a Chianti for everyone else.",
                ),
                (
                    "SPEAKER_01",
                    "Should the white go in the fridge now? It has been sitting on the counter all afternoon.",
                ),
                ("SPEAKER_00", "Yes, chill it for an hour. The Chianti can breathe on the table once it is uncorked."),
            ],
        ),
        (
            "Seating the guests",
            "They decide who sits where at the table.",
            [
                (
                    "SPEAKER_00",
                    "We have eight people and the table seats eight if we bring the folding chair from the garage.",
                ),
                ("SPEAKER_01", "Put Tom far away from Maria, they argued about football last time."),
                ("SPEAKER_00", "Fine, Tom goes at the head of the table next to me and Maria sits by the window."),
            ],
        ),
    ],
    "family/mountain-weekend.mp3": [
        (
            "Route for the hike",
            "The family compares two trails and picks the one to the summit lake.",
            [
                (
                    "SPEAKER_00",
                    "I looked at two trails for Saturday. The ridge trail is fourteen kilometres with a steep climb, the lake trail is nine and mostly through the forest.",
                ),
                (
                    "SPEAKER_01",
                    "The kids will not manage a steep climb. Let us do the lake one and eat lunch by the water.",
                ),
                ("SPEAKER_02", "Can we start early? I want to reach the summit lake before the crowds."),
                ("SPEAKER_00", "We leave the car park at seven then."),
            ],
        ),
        (
            "What to pack",
            "They list the gear and food for the day on the mountain.",
            [
                (
                    "SPEAKER_01",
                    "Everyone carries their own backpack with two litres of water, a rain jacket and a warm layer.",
                ),
                ("SPEAKER_02", "I need new boots, my old ones gave me blisters last summer."),
                (
                    "SPEAKER_00",
                    "Break them in this week then. I will bring the first aid kit, sunscreen and the map in case the phone has no signal.",
                ),
                ("SPEAKER_01", "And sandwiches, nuts and chocolate for the summit."),
            ],
        ),
        (
            "Where to sleep",
            "They book a cabin for the night after the walk.",
            [
                ("SPEAKER_02", "Are we driving home the same evening or staying over?"),
                (
                    "SPEAKER_00",
                    "I found a wooden cabin near the village with four beds and a fireplace for sixty euros.",
                ),
                ("SPEAKER_01", "Book it, nobody will want to drive after that walk."),
            ],
        ),
    ],
    "meetings/q3-review.wav": [
        (
            "Quarterly budget review",
            "Finance reports that third-quarter spending ran twelve percent over plan.",
            [
                (
                    "SPEAKER_00",
                    "Let us start with the numbers for the third quarter. Total spending came in at one point four million against a plan of one point two five.",
                ),
                ("SPEAKER_01", "So we are about twelve percent over. Where did the extra money go?"),
                (
                    "SPEAKER_00",
                    "Mostly cloud hosting costs and the marketing campaign in September, which was not in the original forecast.",
                ),
                (
                    "SPEAKER_02",
                    "We need to cut back in the fourth quarter or ask the board to revise the annual figure.",
                ),
            ],
        ),
        (
            "Hiring plan",
            "The team agrees to recruit two backend engineers and one designer.",
            [
                (
                    "SPEAKER_02",
                    "On headcount, we still want to bring on two backend engineers and a product designer before January.",
                ),
                ("SPEAKER_01", "Can we afford that after what we just heard?"),
                (
                    "SPEAKER_02",
                    "The positions were approved in spring. If we delay the interviews again we lose the candidates to other companies.",
                ),
                ("SPEAKER_00", "Post the job ads this week and keep the salary bands we agreed."),
            ],
        ),
        (
            "Moving to the new office",
            "The lease ends in March and the company will relocate to a larger floor downtown.",
            [
                ("SPEAKER_01", "Last item: our lease on this building ends in March."),
                (
                    "SPEAKER_00",
                    "The landlord downtown offered the whole fourth floor, more desks, two meeting rooms and it is next to the train station.",
                ),
                ("SPEAKER_02", "Who organises the movers and the internet installation?"),
                ("SPEAKER_01", "I will get three quotes from moving companies by Friday."),
            ],
        ),
    ],
    "workshop/bike-repair.m4a": [
        (
            "Fixing a flat tire",
            "The mechanic shows how to find the puncture and patch the inner tube.",
            [
                (
                    "SPEAKER_00",
                    "Your rear wheel has a flat. First take the wheel off and use two tire levers to pull one side of the tire off the rim.",
                ),
                ("SPEAKER_01", "How do you find the hole?"),
                (
                    "SPEAKER_00",
                    "Pump a bit of air into the inner tube and hold it close to your ear, or dip it in a bucket of water and look for bubbles.",
                ),
                (
                    "SPEAKER_00",
                    "Roughen the rubber with sandpaper, apply the glue, wait a minute and press the patch on hard. Check inside the tire for the thorn or the glass that caused it.",
                ),
            ],
        ),
        (
            "Adjusting the brakes",
            "The brake pads are worn and the cable tension is adjusted.",
            [
                ("SPEAKER_01", "The front brake squeaks and the lever goes almost all the way to the handlebar."),
                (
                    "SPEAKER_00",
                    "The pads are worn down to the metal. We replace them and then tighten the cable with the barrel adjuster until the lever feels firm.",
                ),
                ("SPEAKER_01", "Should the pads touch the rim evenly?"),
                ("SPEAKER_00", "Yes, line them up with the braking surface, slightly toed in, so they do not squeal."),
            ],
        ),
        (
            "Cleaning and oiling the chain",
            "They degrease the chain and apply lubricant.",
            [
                ("SPEAKER_00", "Last thing, your chain is black and gritty, that wears out the gears fast."),
                ("SPEAKER_01", "Do I just spray oil on it?"),
                (
                    "SPEAKER_00",
                    "Clean it with degreaser and a rag first, let it dry, then one drop of lube on every link while you turn the pedals backwards, and wipe off the excess.",
                ),
            ],
        ),
    ],
}

# A paraphrased question, the file that answers it, and the index of the answering topic: the
# topic's span is the answer span. No question shares a content word with its topic's lines,
# title or summary (``shared_words`` is empty), so full-text search has no easy match.
QUERIES: list[tuple[str, str, int]] = [
    ("when is the pasta ready to eat", "kitchen/dinner-party.wav", 0),
    ("what should be set aside before emptying the pan", "kitchen/dinner-party.wav", 0),
    ("what alcohol do we offer the visitors with the meal", "kitchen/dinner-party.wav", 1),
    ("making a beverage cold ahead of the evening", "kitchen/dinner-party.wav", 1),
    ("placing each person for the meal so two rivals are kept apart", "kitchen/dinner-party.wav", 2),
    ("which path up the mountain is easier for children", "family/mountain-weekend.mp3", 0),
    ("what time do we set off on the day", "family/mountain-weekend.mp3", 0),
    ("equipment and snacks for the trek", "family/mountain-weekend.mp3", 1),
    ("which items protect us from bad weather up there", "family/mountain-weekend.mp3", 1),
    ("lodging once we come down from the trek", "family/mountain-weekend.mp3", 2),
    ("did we pay out more than we intended these past three months", "meetings/q3-review.wav", 0),
    ("taking on additional programmers", "meetings/q3-review.wav", 1),
    ("why not postpone the talks with applicants", "meetings/q3-review.wav", 1),
    ("shifting the team to different premises", "meetings/q3-review.wav", 2),
    ("arranging a firm to transport our furniture", "meetings/q3-review.wav", 2),
    ("mending a bicycle that went soft", "workshop/bike-repair.m4a", 0),
    ("locating where the leak is", "workshop/bike-repair.m4a", 0),
    ("my bike barely slows when I squeeze the grip", "workshop/bike-repair.m4a", 1),
    ("what shortens the life of the cogs", "workshop/bike-repair.m4a", 2),
    ("looking after a filthy drivetrain", "workshop/bike-repair.m4a", 2),
]

# A question nothing in the corpus answers.
OUT_OF_CORPUS = "what is the capital city of australia"

_STOP = frozenset(
    "about after also because before could does from have into just more once only over should "
    "that their them then there these they this what when where which while will with would your".split()
)


def _content_words(text: str) -> set[str]:
    """Words of four letters or more outside a small stop list, cut to five letters (a crude stem)."""
    words = "".join(c.lower() if c.isalpha() else " " for c in text).split()
    return {w[:5] for w in words if len(w) >= 4 and w not in _STOP}


def shared_words(query: str, key: str, topic: int) -> set[str]:
    """The content words a question shares with its answer topic's lines, title and summary."""
    title, summary, lines = CORPUS[key][topic]
    span = " ".join([title, summary, *(text for _, text in lines)])
    return _content_words(query) & _content_words(span)


def answer_span(key: str, topic: int) -> tuple[float, float]:
    """The (start, end) seconds of a topic of a file as ``build_file`` lays it out."""
    node = build_file(key)[1].nodes[topic]
    return node.start, node.end


def build_file(key: str) -> tuple[SpeakerTranscript, TopicTree]:
    """Lay the file's lines end to end in time; each topic spans its lines."""
    utterances, nodes, t = [], [], 0.0
    for index, (title, summary, lines) in enumerate(CORPUS[key], 1):
        topic_start = t
        for speaker, text in lines:
            end = t + SECONDS_PER_WORD * len(text.split())
            utterances.append(Utterance(speaker=speaker, start=round(t, 2), end=round(end, 2), text=text))
            t = end + PAUSE
        nodes.append(
            TopicNode(
                id=str(index), level=1, start=round(topic_start, 2), end=round(t, 2), title=title, summary=summary
            )
        )
    nodes[-1].end = round(t, 2)
    transcript = SpeakerTranscript(key=key, duration_s=round(t, 2), language="en", utterances=utterances)
    return transcript, TopicTree(key=key, duration_s=round(t, 2), title=key, nodes=nodes)
