"""Topic tree of one speaker transcript: chapters, sub-topics, titles and summaries.

Boundaries come from lexical cohesion (``segment``) and are confirmed by an LLM choosing among
numbered candidates (``stages``); titles and summaries are written by the LLM, judged for
grounding, and replaced by key phrases and central sentences when unusable. ``build`` runs the
stages in order; ``runner`` talks to the model (cache, residency, re-asks, fallbacks).
"""

from autorag_dagster.core.topics.build import TopicStats, build_topic_tree, describe_fallbacks
from autorag_dagster.core.topics.runner import LlmResidency
from autorag_dagster.core.topics.stages import TopicConfig
from autorag_dagster.core.topics.tree import (
    check_tree,
    outline_markdown,
    topic_quality_problems,
)

__all__ = [
    "LlmResidency",
    "TopicConfig",
    "TopicStats",
    "build_topic_tree",
    "check_tree",
    "describe_fallbacks",
    "outline_markdown",
    "topic_quality_problems",
]
