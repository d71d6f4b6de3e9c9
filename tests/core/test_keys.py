import os
import re

import pytest

from autorag_dagster.core.keys import InvalidKeyError, discover_audio, folder_name_for_key, validate_key


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "audio"
    (root / "team" / "2024").mkdir(parents=True)
    (root / "team" / "2024" / "standup.mp3").write_bytes(b"x" * 10)
    (root / "call.wav").write_bytes(b"x" * 20)
    return root


def test_valid_nested_key_resolves_inside_the_root(root):
    assert validate_key(root, "team/2024/standup.mp3") == (root / "team/2024/standup.mp3").resolve()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../secret.wav", "'..' is not allowed"),
        ("team/../../secret.wav", "'..' is not allowed"),
        ("/etc/passwd.wav", "absolute paths are not allowed"),
        ("C:/audio/x.wav", "absolute paths are not allowed"),
        ("", "empty"),
        ("   ", "empty"),
        ("team//2024/standup.mp3", "not a normalised path"),
        ("./call.wav", "not a normalised path"),
        ("call\n.wav", "control characters"),
        ("a...b.wav", "'...' is not allowed"),
        ("notes.txt", "unsupported extension '.txt'"),
        ("README", "unsupported extension '(none)'"),
        ("missing.wav", "no such file"),
    ],
)
def test_bad_keys_fail_with_a_reason(root, key, reason):
    with pytest.raises(InvalidKeyError) as err:
        validate_key(root, key)
    assert reason in str(err.value)
    assert repr(key) in str(err.value)


def test_directory_named_like_audio_is_not_a_file(root):
    (root / "folder.wav").mkdir()
    with pytest.raises(InvalidKeyError, match="not a regular file"):
        validate_key(root, "folder.wav")


def test_symlink_escaping_the_root_is_refused(root, tmp_path):
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"x")
    (root / "escape.wav").symlink_to(outside)
    (root / "team" / "up.wav").symlink_to("../../outside.wav")
    for key in ("escape.wav", "team/up.wav"):
        with pytest.raises(InvalidKeyError, match="outside the audio root"):
            validate_key(root, key)


def test_symlinked_folder_escaping_the_root_is_refused(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.wav").write_bytes(b"x")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InvalidKeyError, match="outside the audio root"):
        validate_key(root, "linked/x.wav")


def test_symlink_inside_the_root_is_allowed(root):
    (root / "alias.wav").symlink_to(root / "call.wav")
    assert validate_key(root, "alias.wav") == (root / "call.wav").resolve()


def test_missing_root_is_reported(tmp_path):
    with pytest.raises(InvalidKeyError, match="is not a directory"):
        validate_key(tmp_path / "nope", "call.wav")


ODD_NAMES = [
    "Team call (final).wav",
    "team call (final).wav",
    "team_call_final_.wav",
    "café résumé — ünïcode.flac",
    "会议记录.mp3",
    "Здравствуйте.ogg",
    'it\'s "quoted" & <odd>.m4a',
    "semi;colon,comma#hash%percent.opus",
    "sub dir/nested name.webm",
    "sub_dir/nested_name.webm",
    "dots.in.name.mp4",
]


def test_odd_names_round_trip_to_safe_unique_folders(tmp_path):
    root = tmp_path / "audio"
    for name in ODD_NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    keys = [c.key for c in discover_audio(root)]
    assert sorted(keys) == sorted(ODD_NAMES)

    folders = {key: folder_name_for_key(key) for key in keys}
    assert len(set(folders.values())) == len(keys), "two keys share a folder"
    exports = tmp_path / "exports"
    for key, folder in folders.items():
        assert validate_key(root, key).name == os.path.basename(key)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*-[0-9a-f]{10}", folder), folder
        assert len(folder) <= 71
        assert folder_name_for_key(key) == folder  # stable across calls
        (exports / folder).mkdir(parents=True)
    assert folders["café résumé — ünïcode.flac"].startswith("cafe-resume-unicode-flac-")
    assert folders["会议记录.mp3"].startswith("mp3-")
    assert len(list(exports.iterdir())) == len(keys)


def test_folder_name_without_any_ascii_falls_back_to_a_generic_slug():
    assert re.fullmatch(r"audio-[0-9a-f]{10}", folder_name_for_key("会议"))


def test_long_keys_give_bounded_folder_names():
    name = folder_name_for_key("a" * 300 + ".wav")
    assert len(name) <= 71 and name.startswith("a" * 20)


def test_discovery_lists_supported_files_with_size_and_mtime(root, tmp_path):
    (root / "notes.txt").write_text("not audio")
    (root / ".partial.mp3").write_bytes(b"x")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.wav").write_bytes(b"x")
    (root / "LOUD.MP3").write_bytes(b"x" * 5)
    (root / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    found = discover_audio(root)
    assert [c.key for c in found] == ["LOUD.MP3", "call.wav", "team/2024/standup.mp3"]
    by_key = {c.key: c for c in found}
    assert by_key["call.wav"].size_bytes == 20
    assert by_key["call.wav"].mtime == pytest.approx((root / "call.wav").stat().st_mtime)
