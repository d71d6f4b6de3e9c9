"""Partition keys: a file's path relative to the audio root, validated before anything is read."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Containers FFmpeg reads audio from (audio-only and video ones). The extension only makes a
# file a candidate: a file with no audio stream is left out, with the reason, when it is probed.
SUPPORTED_EXTENSIONS = frozenset(
    {
        ".wav", ".wave", ".flac", ".mp3", ".mp2", ".m4a", ".m4b", ".aac", ".ogg", ".oga", ".opus",
        ".wma", ".aiff", ".aif", ".aifc", ".amr", ".ac3", ".caf", ".mka",
        ".webm", ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".wmv", ".asf", ".3gp", ".ts", ".mts",
    }
)  # fmt: skip

# Substrings Dagster refuses in a partition key.
_FORBIDDEN_SUBSTRINGS = ("...",)


class InvalidKeyError(ValueError):
    """A partition key that must not be processed; the message says which key and why."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"Invalid audio key {key!r}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class AudioCandidate:
    """A file under the audio root that looks like audio (by extension)."""

    key: str
    size_bytes: int
    mtime: float


def is_supported(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in SUPPORTED_EXTENSIONS


def supported_list() -> str:
    """The accepted extensions, for messages: ``3gp, aac, ...``."""
    return ", ".join(sorted(ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS))


def validate_key(root: Path | str, key: str) -> Path:
    """Return the resolved file a key names, or raise `InvalidKeyError`.

    A key is a normalised, relative, '/'-separated path inside `root` to an existing regular
    file with a supported extension; symlinks are allowed only if they stay inside `root`.
    """
    if not isinstance(key, str) or not key.strip():
        raise InvalidKeyError(str(key), "the key is empty")
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise InvalidKeyError(key, "the key contains control characters")
    if any(bad in key for bad in _FORBIDDEN_SUBSTRINGS):
        raise InvalidKeyError(key, "'...' is not allowed in a partition key; rename the file")
    posix = PurePosixPath(key)
    if posix.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", key):
        raise InvalidKeyError(key, "absolute paths are not allowed; use a path relative to the audio root")
    if ".." in posix.parts:
        raise InvalidKeyError(key, "'..' is not allowed; the key must stay inside the audio root")
    if str(posix) != key:
        raise InvalidKeyError(key, f"the key is not a normalised path (expected {str(posix)!r})")
    if posix.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise InvalidKeyError(key, f"unsupported extension {posix.suffix or '(none)'!r}; supported: {supported_list()}")

    root_path = Path(root)
    if not root_path.is_dir():
        raise InvalidKeyError(key, f"the audio root {str(root_path)!r} is not a directory")
    real_root = root_path.resolve()
    real = (root_path / posix).resolve()
    if not real.is_relative_to(real_root):
        raise InvalidKeyError(key, f"it resolves to {str(real)!r}, outside the audio root {str(real_root)!r}")
    if not real.exists():
        raise InvalidKeyError(key, f"no such file under the audio root {str(real_root)!r}")
    if not real.is_file():
        raise InvalidKeyError(key, "it is not a regular file")
    return real


def folder_name_for_key(key: str, max_slug: int = 60) -> str:
    """A readable folder name, unique per key, safe on every common filesystem.

    ASCII slug of the key (accents folded, everything else collapsed to '-') plus a short
    hash of the exact key, so 'a b.wav' and 'a_b.wav' never share a folder.
    """
    ascii_text = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:max_slug].rstrip("-")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{slug or 'audio'}-{digest}"


def discover_audio(root: Path | str) -> list[AudioCandidate]:
    """Files with a supported extension under `root`, as keys (hidden files and folders skipped).

    Symlinks are listed as found; `validate_key` decides whether they may be processed.
    """
    root_path = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root_path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not is_supported(name):
                continue
            path = Path(dirpath) / name
            try:
                stat = path.stat()
            except OSError:  # dangling symlink or a file removed while listing
                continue
            key = path.relative_to(root_path).as_posix()
            found.append(AudioCandidate(key=key, size_bytes=stat.st_size, mtime=stat.st_mtime))
    return sorted(found, key=lambda c: c.key)


def other_files(root: Path | str) -> list[str]:
    """Files under ``root`` that are not audio by their extension (hidden ones skipped), as keys."""
    root_path = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root_path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and not is_supported(name):
                found.append((Path(dirpath) / name).relative_to(root_path).as_posix())
    return sorted(found)


def valid_keys(root: Path | str) -> tuple[list[AudioCandidate], list[InvalidKeyError]]:
    """The audio files under ``root`` that may be processed, and why each of the others may not."""
    accepted: list[AudioCandidate] = []
    rejected: list[InvalidKeyError] = []
    for candidate in discover_audio(root):
        try:
            validate_key(root, candidate.key)
        except InvalidKeyError as exc:
            rejected.append(exc)
        else:
            accepted.append(candidate)
    return accepted, rejected
