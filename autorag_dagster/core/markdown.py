"""Text from speech recognition, the LLM or file names, made inert before it goes into Markdown."""

from __future__ import annotations

import re

# Characters that open Markdown (or GFM table) syntax inline; `<`, `>` and `&` become entities,
# so that no HTML tag or entity reaches the renderer.
_SYNTAX = re.compile(r"([\\`*_\[\]|~#])")
_LINE_BREAK = re.compile(r"\s*[\r\n]+\s*")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_escape(text: object) -> str:
    """``text`` as literal inline Markdown: on one line, every syntax character escaped."""
    line = _LINE_BREAK.sub(" ", str(text))
    line = "".join(_ENTITIES.get(char, char) for char in line)
    return _SYNTAX.sub(r"\\\1", line)
