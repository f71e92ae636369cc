"""Voice messages: WeChat's SILK codec <-> WAV, through the optional ``silk`` extra.

Inbound voice arrives as (encrypted) SILK, usually with the server's transcript in
``Message.voice_text``. Turning SILK into WAV, or WAV/PCM into SILK for a voice bubble,
needs a SILK codec: install ``weixin-trio[silk]`` (it brings ``pilk``). Without it the
functions here raise `VoiceCodecUnavailable`, which names the extra.

All functions are synchronous and CPU-bound: call them through ``trio.to_thread``.
"""

from __future__ import annotations

import io
import os
import tempfile
import wave
from typing import Any, Final

from ._errors import VoiceCodecUnavailable

__all__ = [
    "SILK_SAMPLE_RATE",
    "VoiceCodecUnavailable",
    "is_silk",
    "pcm_to_silk",
    "silk_duration_ms",
    "silk_to_wav",
    "wav_to_silk",
]

#: The rate the references decode WeChat voice at (PROTOCOL §6.9).
SILK_SAMPLE_RATE: Final = 24_000
_RATES: Final = frozenset({8000, 12000, 16000, 24000, 32000, 44100, 48000})


def _pilk() -> Any:
    try:
        import pilk
    except ImportError:
        raise VoiceCodecUnavailable from None
    return pilk


def is_silk(data: bytes) -> bool:
    """Whether ``data`` looks like SILK (Tencent's ``\\x02#!SILK_V3`` or plain ``#!SILK_V3``)."""
    return data.startswith((b"\x02#!SILK_V3", b"#!SILK_V3"))


def _tmp(suffix: str, data: bytes = b"") -> str:
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="weixin-trio-voice-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def silk_duration_ms(silk: bytes) -> int:
    """Duration of a SILK stream in milliseconds.

    Raises:
        VoiceCodecUnavailable: No codec installed.
    """
    pilk = _pilk()
    path = _tmp(".silk", silk)
    try:
        return int(pilk.get_duration(path))
    finally:
        os.unlink(path)


def silk_to_wav(silk: bytes, *, rate: int = SILK_SAMPLE_RATE) -> bytes:
    """Decode SILK to a mono 16-bit WAV file at ``rate`` Hz.

    Raises:
        VoiceCodecUnavailable: No codec installed.
        ValueError: ``silk`` is not SILK.
    """
    if not is_silk(silk):
        raise ValueError("not a SILK stream")
    pilk = _pilk()
    src, dst = _tmp(".silk", silk), _tmp(".pcm")
    try:
        pilk.decode(src, dst, pcm_rate=rate)
        with open(dst, "rb") as f:
            pcm = f.read()
    finally:
        os.unlink(src)
        os.unlink(dst)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def pcm_to_silk(pcm: bytes, *, rate: int = SILK_SAMPLE_RATE) -> tuple[bytes, int]:
    """Encode mono 16-bit little-endian PCM to Tencent SILK; returns ``(silk, ms)``.

    Raises:
        VoiceCodecUnavailable: No codec installed.
        ValueError: Unsupported sample rate.
    """
    if rate not in _RATES:
        raise ValueError(f"unsupported sample rate {rate}; one of {sorted(_RATES)}")
    pilk = _pilk()
    src, dst = _tmp(".pcm", pcm), _tmp(".silk")
    try:
        pilk.encode(src, dst, pcm_rate=rate, tencent=True)
        with open(dst, "rb") as f:
            silk = f.read()
        duration = int(pilk.get_duration(dst))
    finally:
        os.unlink(src)
        os.unlink(dst)
    return silk, duration


def wav_to_silk(data: bytes) -> tuple[bytes, int, int]:
    """Encode a mono 16-bit PCM WAV file to SILK; returns ``(silk, ms, sample_rate)``.

    Raises:
        VoiceCodecUnavailable: No codec installed.
        ValueError: Not a mono 16-bit PCM WAV at a SILK sample rate.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file: {exc}") from None
    if channels != 1 or width != 2:
        raise ValueError("voice must be mono 16-bit PCM WAV")
    silk, duration = pcm_to_silk(pcm, rate=rate)
    return silk, duration, rate
