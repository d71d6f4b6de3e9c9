"""What ``stack.sh pull`` and ``status`` run in the project image: ``autorag speech-models [--fetch]``.

No network here: the hub's cache is laid out as huggingface_hub lays it out, and the checks go
through faster-whisper's and pyannote's own lookups.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autorag_dagster.cli import app
from autorag_dagster.core import speech_models
from autorag_dagster.core.diarize.base import DiarizerConfig
from autorag_dagster.core.transcribe import WhisperConfig
from tests.support.pyannote_local import build_random_pipeline

TURBO_REPO = "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
COMMUNITY = "pyannote/speaker-diarization-community-1"
GPU = {"diarizer": "pyannote", "pyannote_pipeline": COMMUNITY}


def cached_repo(cache: Path, repo: str, files: dict[str, str]) -> Path:
    """A repository in a huggingface_hub cache: refs/main -> snapshots/<commit>/<files>."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    for name, text in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text)
    return snapshot


def whisper_files() -> dict[str, str]:
    return {"config.json": "{}", "model.bin": "weights", "tokenizer.json": "{}", "vocabulary.json": "[]"}


def test_the_laptop_defaults_are_packaged_and_need_no_download(tmp_path):
    states = speech_models.status(WhisperConfig(), DiarizerConfig(), cache_dir=tmp_path)
    assert [(s.role, s.name, s.state) for s in states] == [
        ("whisper", "tiny.en", "packaged"),
        ("diarizer", "resemblyzer", "packaged"),
    ]
    assert all(s.ready for s in states)
    assert (Path(states[0].where) / "model.bin").is_file()


def test_the_gpu_models_are_missing_from_an_empty_cache(tmp_path):
    states = speech_models.status(WhisperConfig(whisper_model="large-v3-turbo"), DiarizerConfig(**GPU), tmp_path)
    assert [(s.name, s.state) for s in states] == [("large-v3-turbo", "missing"), (COMMUNITY, "missing")]
    assert all("./scripts/stack.sh pull" in s.where for s in states)


def test_fetch_asks_the_hub_for_the_files_faster_whisper_loads_and_then_finds_them_as_it_does(tmp_path, monkeypatch):
    import faster_whisper.utils
    import huggingface_hub

    asked: dict = {}

    def loader_asks(repo, **kwargs):  # what faster-whisper's own download asks for
        asked.update(repo=repo, **kwargs)
        raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(faster_whisper.utils.huggingface_hub, "snapshot_download", loader_asks)
    with pytest.raises(huggingface_hub.errors.LocalEntryNotFoundError):
        faster_whisper.utils.download_model("large-v3-turbo")
    assert asked["repo"] == TURBO_REPO and asked["allow_patterns"] == speech_models.WHISPER_FILES
    monkeypatch.undo()

    downloads = []

    def download(repo, **kwargs):
        downloads.append((repo, kwargs))
        assert "tqdm_class" not in kwargs  # huggingface_hub's progress bars stay on
        return str(cached_repo(Path(kwargs["cache_dir"]), repo, whisper_files()))

    monkeypatch.setattr(speech_models, "_download", download)
    state = speech_models.fetch_whisper("large-v3-turbo", cache_dir=tmp_path)
    assert [(repo, kwargs["allow_patterns"]) for repo, kwargs in downloads] == [
        (TURBO_REPO, speech_models.WHISPER_FILES)
    ]
    assert state.state == "present" and Path(state.where, "model.bin").read_text() == "weights"
    # Present now: the stack's status finds it through faster-whisper's offline lookup.
    assert speech_models.whisper_state("turbo", tmp_path).state == "present"


def test_a_failed_whisper_download_names_the_model_and_the_repository(tmp_path, monkeypatch):
    def offline(repo, **kwargs):
        raise OSError("Could not resolve host: huggingface.co")

    monkeypatch.setattr(speech_models, "_download", offline)
    with pytest.raises(speech_models.SpeechModelError, match=f"'large-v3-turbo' \\({TURBO_REPO}\\).*resolve host"):
        speech_models.fetch_whisper("large-v3-turbo", cache_dir=tmp_path)
    with pytest.raises(speech_models.SpeechModelError, match="neither a faster-whisper model name"):
        speech_models.whisper_state("huge-v9", tmp_path)


def test_a_hub_pipeline_is_present_only_with_every_model_its_config_names(tmp_path):
    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {"segmentation": "$model/segmentation", "embedding": "$model/embedding", "plda": "$model/plda"},
        }
    }
    files = {
        "config.yaml": yaml.safe_dump(config),
        "segmentation/pytorch_model.bin": "s",
        "embedding/pytorch_model.bin": "e",
    }
    snapshot = cached_repo(tmp_path, COMMUNITY, files)
    state = speech_models.pipeline_state(DiarizerConfig(**GPU), tmp_path)
    assert state.state == "missing" and state.where.startswith("plda not downloaded")
    (snapshot / "plda").mkdir()
    (snapshot / "plda" / "plda.npz").write_text("p")
    state = speech_models.pipeline_state(DiarizerConfig(**GPU), tmp_path)
    assert (state.state, state.where) == ("present", str(snapshot))


def test_a_local_pipeline_folder_is_fetched_by_loading_it(tmp_path):
    folder = build_random_pipeline(tmp_path / "pipeline")
    config = DiarizerConfig(diarizer="pyannote", pyannote_pipeline=str(folder))
    assert speech_models.pipeline_state(config).state == "local folder"
    assert speech_models.fetch_pipeline(config).state == "local folder"
    (folder / "config.yaml").unlink()
    with pytest.raises(speech_models.SpeechModelError, match="has no config.yaml"):
        speech_models.fetch_pipeline(config)


def test_the_cli_lists_each_model_and_exits_1_when_one_is_missing(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from autorag_dagster.settings import get_settings

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("AUTORAG_WHISPER_MODEL", "AUTORAG_DIARIZER", "AUTORAG_PYANNOTE_PIPELINE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        packaged = CliRunner().invoke(app, ["speech-models"])
        assert packaged.exit_code == 0, packaged.output
        assert "packaged     whisper  tiny.en" in packaged.output
        assert "packaged     diarizer resemblyzer" in packaged.output

        monkeypatch.setenv("AUTORAG_WHISPER_MODEL", "large-v3-turbo")
        monkeypatch.setenv("AUTORAG_DIARIZER", "pyannote")
        get_settings.cache_clear()
        missing = CliRunner().invoke(app, ["speech-models"])
        assert missing.exit_code == 1
        assert "MISSING      whisper  large-v3-turbo: not downloaded" in missing.output
        assert f"MISSING      diarizer {COMMUNITY}" in missing.output
        assert "Missing: large-v3-turbo, pyannote/speaker-diarization-community-1" in missing.stderr
    finally:
        get_settings.cache_clear()
