import hashlib
import subprocess

import numpy as np
import pytest

from autorag_dagster.core.audio import PCM_FILENAME, AudioDecodeError, decode, load_samples, prepare_audio
from tests.support.speech import convert, write_wav

# (extension, ffmpeg arguments, expected codec, source rate, source channels)
FORMATS = {
    "stereo-44k.wav": (["-ac", "2", "-ar", "44100"], "pcm_s16le", 44100, 2),
    "mp3": (["-ac", "2", "-ar", "44100", "-b:a", "96k"], "mp3float", 44100, 2),
    "opus": (["-c:a", "libopus", "-b:a", "32k"], "opus", 48000, 1),
    "m4a": (["-c:a", "aac", "-b:a", "64k"], "aac", 22050, 1),
    "flac": (["-ar", "48000"], "flac", 48000, 1),
    "ogg": (["-c:a", "libvorbis", "-ac", "2"], "vorbis", 22050, 2),
}
VIDEOS = {
    "mp4": (["-c:v", "libx264", "-c:a", "aac"], "aac"),
    "webm": (["-c:v", "libvpx", "-c:a", "libopus"], "opus"),
}


@pytest.fixture(scope="module")
def source(two_speakers, tmp_path_factory):
    """A 12 s excerpt: long enough for real codecs, short enough to encode quickly."""
    folder = tmp_path_factory.mktemp("formats")
    return convert(two_speakers.path, folder / "source.wav", "-t", "12"), 12.0


@pytest.mark.parametrize("name", FORMATS)
def test_audio_formats_decode_to_16k_mono(source, tmp_path, name):
    wav, duration = source
    args, codec, rate, channels = FORMATS[name]
    path = convert(wav, tmp_path / f"speech.{name.split('.')[-1]}", *args)

    info = prepare_audio(path, f"speech.{name}", tmp_path / "out")

    assert info.sample_rate == 16000
    assert info.duration_s == pytest.approx(duration, abs=0.1)
    assert (info.codec, info.source_sample_rate, info.source_channels) == (codec, rate, channels)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.size_bytes == path.stat().st_size
    samples = load_samples(info)
    assert info.pcm_path.endswith(PCM_FILENAME)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(duration * 16000, abs=1600)
    assert 0.02 < float(np.sqrt(np.mean(samples**2))) and np.abs(samples).max() <= 1.0


def test_stereo_downmix_matches_the_mono_source(source, tmp_path):
    wav, _ = source
    stereo = convert(wav, tmp_path / "stereo.wav", "-ac", "2", "-ar", "44100")
    mono, downmixed = decode(wav).samples, decode(stereo).samples
    n = min(len(mono), len(downmixed))
    assert abs(len(mono) - len(downmixed)) < 50
    assert np.corrcoef(mono[:n], downmixed[:n])[0, 1] > 0.98


@pytest.mark.parametrize("ext", VIDEOS)
def test_video_containers_use_their_audio_stream(source, tmp_path, ext):
    wav, duration = source
    args, codec = VIDEOS[ext]
    path = tmp_path / f"clip.{ext}"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"color=c=navy:s=64x64:r=5:d={duration}",
            "-i",
            str(wav),
            *args,
            str(path),
        ],
        check=True,
    )
    decoded = decode(path)
    assert decoded.codec == codec
    assert decoded.duration_s == pytest.approx(duration, abs=0.15)


def _video_without_audio(path):
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64:r=5:d=2",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
    )


def _truncated(source, path, keep):
    path.write_bytes(source.read_bytes()[:keep])


UNREADABLE = "could not read it as audio"


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.wav", lambda src, p: p.write_bytes(b""), "empty (0 bytes)"),
        ("notes.wav", lambda src, p: p.write_text("meeting notes, not audio\n" * 20), UNREADABLE),
        ("noise.mp3", lambda src, p: p.write_bytes(np.random.default_rng(1).bytes(20000)), UNREADABLE),
        ("no_samples.wav", lambda src, p: write_wav(p, np.zeros(0, np.int16)), "decodes to zero samples"),
        ("cut.m4a", lambda src, p: _truncated(convert(src, p.with_name("full.m4a")), p, 600), UNREADABLE),
        ("silent_film.mp4", lambda src, p: _video_without_audio(p), "no audio stream"),
    ],
)
def test_bad_input_fails_naming_the_file_and_why(source, tmp_path, name, make, reason):
    path = tmp_path / name
    make(source[0], path)
    out = tmp_path / "out"
    with pytest.raises(AudioDecodeError) as err:
        prepare_audio(path, name, out)
    message = str(err.value)
    assert str(path) in message and reason in message
    assert err.value.path == str(path)
    assert not (out / PCM_FILENAME).exists()


def test_unreadable_file_fails_naming_the_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="cannot be read") as err:
        decode(tmp_path / "gone.wav")
    assert "gone.wav" in str(err.value)


def test_probe_accepts_audio_and_rejects_what_decode_rejects(source, tmp_path):
    from autorag_dagster.core.audio import probe

    probe(source[0])  # no error
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("meeting notes, not audio\n" * 20)
    _video_without_audio(tmp_path / "film.mp4")
    for name, reason in (("empty.wav", "empty"), ("notes.wav", UNREADABLE), ("film.mp4", "no audio stream")):
        with pytest.raises(AudioDecodeError, match=reason):
            probe(tmp_path / name)
