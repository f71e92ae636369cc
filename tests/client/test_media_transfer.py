"""Media through the encrypted CDN: upload, download, routing, limits, faults, voice."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import math
import os
import struct
import sys
import time
import wave
from typing import TYPE_CHECKING

import pytest
import trio

import weixin_trio as wx
from weixin_trio import voice
from weixin_trio._wire import CDNMedia
from weixin_trio.media import MediaKind
from weixin_trio.testing import FakeILinkServer, Fault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

USER = "alice@im.wechat"


@pytest.fixture(autouse=True)
def _hand_picked_tokens_count_as_issued(fake_ilink: FakeILinkServer) -> None:
    """These tests send with hand-picked context tokens, which the fake never issued."""
    fake_ilink.default.issued_tokens.update({"c", "ctx"})


async def grab_one(fake: FakeILinkServer, client: wx.ILinkClient) -> wx.Message:
    box: list[wx.Message] = []
    done = trio.Event()

    async def grab(msg: wx.Message) -> None:
        box.append(msg)
        done.set()

    async with wx.open_monitor(client, grab):
        await done.wait()
    return box[0]


@pytest.mark.parametrize(
    ("method", "name", "item_type", "kind"),
    [
        ("send_image", "photo.png", 2, MediaKind.IMAGE),
        ("send_video", "clip.mp4", 5, MediaKind.VIDEO),
        ("send_file", "report.pdf", 4, MediaKind.FILE),
    ],
)
async def test_send_each_kind_from_a_path(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
    method: str,
    name: str,
    item_type: int,
    kind: MediaKind,
) -> None:
    data = os.urandom(100_000)
    path = tmp_path / name
    path.write_bytes(data)
    ticks: list[tuple[int, int]] = []
    send = getattr(ilink_client, method)
    result = await send(USER, path, context_token="ctx", progress=lambda d, t: ticks.append((d, t)))
    assert result.confirmed
    [(sent_type, plaintext, item)] = fake_ilink.sent_media(USER)
    assert sent_type == item_type
    assert plaintext == data
    payload = next(v for k, v in item.items() if k.endswith("_item"))
    media = payload["media"]
    assert media["encrypt_type"] == 1
    assert len(media["aes_key"]) == 44  # base64 of the 32-char hex key (form B)
    padded = (len(data) // 16 + 1) * 16
    if kind is MediaKind.IMAGE:
        assert payload["mid_size"] == padded
    elif kind is MediaKind.VIDEO:
        assert payload["video_size"] == padded
    else:
        assert payload == {"media": media, "file_name": name, "len": str(len(data))}
    assert ticks[-1] == (padded, padded)
    [req] = [r.body for r in fake_ilink.requests_to("getuploadurl")]
    assert req["rawsize"] == len(data)
    assert req["rawfilemd5"] == hashlib.md5(data).hexdigest()
    assert req["filesize"] == padded
    assert req["no_need_thumb"] is True
    assert len(req["aeskey"]) == 32


async def test_routing_by_name_and_caption_order(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    await ilink_client.send_media(USER, b"gif", file_name="a.gif", context_token="c")
    await ilink_client.send_media(USER, b"webm", file_name="b.webm", context_token="c")
    await ilink_client.send_media(
        USER, b"mp3", file_name="c.mp3", caption="listen", context_token="c"
    )
    types = [s.items[0]["type"] for s in fake_ilink.sent_to(USER)]
    assert types == [2, 5, 1, 4]
    assert fake_ilink.sent_texts(USER)[2] == "listen"


async def test_upload_from_an_async_stream_in_chunks(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    data = os.urandom(700_001)

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 65_536):
            await trio.lowlevel.checkpoint()
            yield data[i : i + 65_536]

    await ilink_client.send_file(USER, stream(), file_name="big.bin", context_token="c")
    [(_, plaintext, _)] = fake_ilink.sent_media(USER)
    assert plaintext == data


async def test_upload_retries_5xx_but_not_4xx(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("cdn_upload", Fault.http_status(502), times=2)
    await ilink_client.send_file(USER, b"x" * 10, file_name="a.txt", context_token="c")
    assert len(fake_ilink.requests) > 0
    fake_ilink.inject_fault("cdn_upload", Fault.http_status(503), times=3)
    with pytest.raises(wx.CdnError, match="HTTP 503"):
        await ilink_client.send_file(USER, b"y", file_name="b.txt", context_token="c")
    fake_ilink.inject_fault("cdn_upload", Fault.http_status(403, b"denied"))
    with pytest.raises(wx.CdnError, match="refused: HTTP 403") as info:
        await ilink_client.send_file(USER, b"z", file_name="c.txt", context_token="c")
    assert info.value.status_code == 403
    fake_ilink.inject_fault("cdn_upload", Fault.http_status(200, b""))
    with pytest.raises(wx.CdnError, match="without x-encrypted-param"):
        await ilink_client.send_file(USER, b"w", file_name="d.txt", context_token="c")
    fake_ilink.inject_fault("cdn_upload", Fault.reset(), times=3)
    with pytest.raises(wx.CdnError, match="ReadError"):
        await ilink_client.send_file(USER, b"v", file_name="e.txt", context_token="c")
    assert fake_ilink.sent_texts(USER) == [""]  # only the first file was sent


async def test_file_changing_size_during_upload_is_refused(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"a" * 1000)

    def grow(done: int, total: int) -> None:
        del done, total
        with path.open("ab") as f:
            f.write(b"more")

    with pytest.raises(wx.CdnError, match="changed size"):
        await ilink_client.send_file(USER, path, context_token="c", progress=grow)


async def test_download_every_kind_round_trips(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    image, doc, video = os.urandom(5000), os.urandom(70_000), os.urandom(33)
    fake_ilink.inject_message(
        USER,
        [
            {"type": 1, "text_item": {"text": "three attachments"}},
        ],
    )
    msg_text = await grab_one(fake_ilink, ilink_client)
    assert msg_text.media == ()
    fake_ilink.inject_image(USER, image)
    img_msg = await grab_one(fake_ilink, ilink_client)
    assert await img_msg.download() == image
    fake_ilink.inject_file(USER, doc, "../../etc/passwd")
    file_msg = await grab_one(fake_ilink, ilink_client)
    written = await file_msg.download(to=tmp_path)
    assert written == tmp_path / "passwd"
    assert written.read_bytes() == doc
    fake_ilink.inject_video(USER, video)
    vid_msg = await grab_one(fake_ilink, ilink_client)
    target = tmp_path / "v.mp4"
    assert await vid_msg.download(to=target) == target
    assert target.read_bytes() == video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd", "v.mp4"]


async def test_download_size_cap_before_and_during(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    fake_ilink.inject_file(USER, b"x" * 5000, "big.bin")
    msg = await grab_one(fake_ilink, ilink_client)
    with pytest.raises(wx.CdnError, match="exceeds"):
        await msg.download(to=tmp_path, max_bytes=4000)
    assert list(tmp_path.iterdir()) == []
    # An image announces no plaintext size: the cap is enforced while streaming.
    fake_ilink.inject_image(USER, b"y" * 50_000)
    img = await grab_one(fake_ilink, ilink_client)
    forged = wx.MediaRef(
        kind=img.media[0].kind,
        media=img.media[0].media,
        item_index=0,
        downloadable=True,
        aes_key_hex=img.media[0].aes_key_hex,
    )
    with pytest.raises(wx.CdnError, match="exceeds"):
        await ilink_client.download(forged, to=tmp_path / "img.jpg", max_bytes=10_000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (Fault.http_status(500), "HTTP 500"),
        (Fault.http_status(404), "HTTP 404"),
        (Fault.truncated(), "decrypt|bytes"),
        (Fault.html(), "HTML"),
        (Fault.reset(), "ReadError"),
    ],
    ids=["500", "404", "truncated", "html", "reset"],
)
async def test_download_failures_are_typed_and_leave_no_file(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
    fault: Fault,
    match: str,
) -> None:
    fake_ilink.inject_file(USER, os.urandom(4000), "doc.pdf")
    msg = await grab_one(fake_ilink, ilink_client)
    fake_ilink.inject_fault("cdn_download", fault)
    with pytest.raises(wx.CdnError, match=match) as info:
        await msg.download(to=tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert "encrypted_query_param" not in str(info.value)


async def test_foreign_cdn_host_is_refused(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_message(
        USER,
        [
            {
                "type": 4,
                "file_item": {
                    "media": {
                        "full_url": "http://169.254.169.254/latest/meta-data?secret=1",
                        "aes_key": "ABEiM0RVZneImaq7zN3u/w==",
                    },
                    "file_name": "x",
                    "len": "1",
                },
            }
        ],
    )
    msg = await grab_one(fake_ilink, ilink_client)
    with pytest.raises(wx.CdnError, match="not in the allowed hosts") as info:
        await msg.download()
    assert "secret" not in str(info.value)


async def test_full_urls_are_used_when_given(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.cdn_full_urls = True
    data = os.urandom(1234)
    fake_ilink.inject_file(USER, data, "a.bin")
    msg = await grab_one(fake_ilink, ilink_client)
    assert msg.media[0].media.full_url
    assert await msg.download() == data
    await ilink_client.send_file(USER, data, file_name="b.bin", context_token="c")
    assert fake_ilink.sent_media(USER)[0][1] == data


async def test_reply_media_uses_deterministic_ids(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_text(USER, "send me the report")
    msg = await grab_one(fake_ilink, ilink_client)
    result = await msg.reply_file(b"%PDF-", file_name="r.pdf", caption="here you go")
    sends = fake_ilink.sent_to(USER)
    assert [s.text for s in sends] == ["here you go", ""]
    assert sends[1].client_id == result.client_id
    assert result.client_id.startswith("weixin-trio:r-")
    assert all(s.context_token == msg.context_token for s in sends)


def _wav(seconds: float = 0.5, rate: int = 24000) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(frames)
    return out.getvalue()


async def test_voice_round_trip_with_the_silk_extra(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_text(USER, "say something")
    msg = await grab_one(fake_ilink, ilink_client)
    await msg.reply_voice(_wav(0.5))
    [(item_type, silk, item)] = fake_ilink.sent_media(USER)
    assert item_type == 3
    assert voice.is_silk(silk)
    payload = item["voice_item"]
    assert payload["encode_type"] == 6
    assert payload["sample_rate"] == 24000
    assert 400 <= payload["playtime"] <= 600
    wav = voice.silk_to_wav(silk)
    with wave.open(io.BytesIO(wav)) as f:
        assert f.getframerate() == 24000
        assert 0.4 <= f.getnframes() / 24000 <= 0.6


async def test_voice_without_the_extra_names_it(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pilk", None)  # as if not installed
    with pytest.raises(voice.VoiceCodecUnavailable, match=r"weixin-trio\[silk\]"):
        await ilink_client.send_voice(USER, _wav(0.1), context_token="c")
    with pytest.raises(voice.VoiceCodecUnavailable):
        voice.silk_to_wav(b"\x02#!SILK_V3" + b"\x00" * 10)
    assert fake_ilink.sends == []


async def test_voice_errors_are_clear(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    with pytest.raises(ValueError, match="WAV"):
        await ilink_client.send_voice(USER, b"not audio", context_token="c")
    with pytest.raises(ValueError, match="send_voice"):
        await ilink_client.send_media(USER, b"x", kind=MediaKind.VOICE, context_token="c")


async def test_cdn_urls_never_reach_the_logs(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI tests may have raised it
    fake_ilink.cdn_full_urls = True
    fake_ilink.inject_file(USER, b"secret document", "a.txt")
    msg = await grab_one(fake_ilink, ilink_client)
    await msg.download()
    await msg.reply_file(b"reply document", file_name="b.txt")
    params = [m.media.encrypt_query_param for m in msg.media] + list(fake_ilink.cdn.objects)
    assert params
    assert "HTTP Request" in caplog.text  # httpx did log the requests
    for param in params:
        assert param
        assert param not in caplog.text
    assert msg.context_token
    assert msg.context_token not in caplog.text


# --- download(to=...): directories, existing files, crash leftovers -------------------------


async def test_download_to_a_path_ending_in_a_slash_creates_the_directory(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    fake_ilink.inject_file(USER, b"quarterly numbers", "report.txt")
    msg = await grab_one(fake_ilink, ilink_client)
    inbox = tmp_path / "inbox" / "2026"
    written = await msg.download(to=f"{inbox}/")
    assert written == inbox / "report.txt"
    assert written.read_bytes() == b"quarterly numbers"
    # An existing directory is a directory with or without the slash.
    again = await msg.download(to=inbox)
    assert again == inbox / "report (1).txt"


async def test_download_never_overwrites_an_existing_file_unless_asked(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    fake_ilink.inject_file(USER, b"new", "notes.txt")
    msg = await grab_one(fake_ilink, ilink_client)
    (tmp_path / "notes.txt").write_bytes(b"mine")
    (tmp_path / "notes (1).txt").mkdir()  # a directory in the way is skipped too
    (tmp_path / "notes (2).txt").symlink_to(tmp_path / "elsewhere")  # so is a dangling link
    assert await msg.download(to=tmp_path) == tmp_path / "notes (3).txt"
    assert await msg.download(to=tmp_path / "notes.txt") == tmp_path / "notes (4).txt"
    assert (tmp_path / "notes.txt").read_bytes() == b"mine"
    assert not (tmp_path / "elsewhere").exists()
    assert (tmp_path / "notes (3).txt").read_bytes() == b"new"
    written = await msg.download(to=tmp_path / "notes.txt", overwrite=True)
    assert written == tmp_path / "notes.txt"
    assert written.read_bytes() == b"new"
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert await msg.download(to=plain) == tmp_path / "plain (1)"
    # The client's own download takes the same keyword.
    ref = msg.media[0]
    assert await ilink_client.download(ref, to=plain, overwrite=True) == plain
    assert plain.read_bytes() == b"new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".part-")]


async def test_concurrent_downloads_to_one_name_each_get_their_own_file(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    fake_ilink.inject_file(USER, os.urandom(600_000), "big.bin")
    msg = await grab_one(fake_ilink, ilink_client)
    written: list[Path | bytes] = []

    async def fetch() -> None:
        written.append(await msg.download(to=tmp_path))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(fetch)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["big (1).bin", "big (2).bin", "big (3).bin", "big (4).bin", "big.bin"]
    assert len(set(written)) == 5


async def test_download_removes_stale_temporary_files_of_a_crash(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
) -> None:
    from weixin_trio._client.cdn_download import STALE_PART_AGE

    fake_ilink.inject_file(USER, b"data", "d.txt")
    msg = await grab_one(fake_ilink, ilink_client)
    old = time.time() - STALE_PART_AGE - 5
    for name in (".part-ab_cd123", ".part-fresh123", ".part-ab_cd123.txt", "x.part-ab_cd123"):
        (tmp_path / name).write_bytes(b"half")
    for name in (".part-ab_cd123", ".part-ab_cd123.txt", "x.part-ab_cd123"):
        os.utime(tmp_path / name, (old, old))
    (tmp_path / ".part-olddir1").mkdir()
    os.utime(tmp_path / ".part-olddir1", (old, old))
    await msg.download(to=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".part-ab_cd123.txt",  # not a name we create
        ".part-fresh123",  # may be a download in progress
        ".part-olddir1",  # not a file
        "d.txt",
        "x.part-ab_cd123",
    ]


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "!!!not base64!!!",
        "QUJD",
        "ABEiM0RVZneImaq7zN3u",
        "MDAxMTIyMzM0NDU1NjY3Nzg4OTlhYWJiY2NkZGVlZmc=",
    ],
    ids=["alphabet", "3-bytes", "15-bytes", "bad-hex"],
)
async def test_a_bad_aes_key_is_a_cdn_error(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
    key: str,
) -> None:
    obj = fake_ilink.cdn.store(b"secret")
    media = {"encrypt_query_param": obj.param, "aes_key": key}
    fake_ilink.inject_message(
        USER, [{"type": 4, "file_item": {"media": media, "file_name": "f.bin", "len": "6"}}]
    )
    msg = await grab_one(fake_ilink, ilink_client)
    with pytest.raises(wx.CdnError, match="cannot decrypt") as info:
        await msg.download(to=tmp_path)
    assert key not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    bad_hex = wx.MediaRef(
        kind=MediaKind.IMAGE, media=CDNMedia(encrypt_query_param=obj.param), item_index=0,
        downloadable=True, aes_key_hex="zz" * 16,
    )  # fmt: skip
    with pytest.raises(wx.CdnError, match="cannot decrypt"):
        await ilink_client.download(bad_hex)


@pytest.mark.parametrize(
    ("item_type", "payload"), [(3, "voice_item"), (4, "file_item"), (5, "video_item")]
)
async def test_video_file_and_voice_without_a_key_are_never_downloaded(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    item_type: int,
    payload: str,
) -> None:
    obj = fake_ilink.cdn.store(b"plaintext")
    fake_ilink.inject_message(
        USER, [{"type": item_type, payload: {"media": {"encrypt_query_param": obj.param}}}]
    )
    msg = await grab_one(fake_ilink, ilink_client)
    [ref] = msg.media
    assert not ref.downloadable
    with pytest.raises(LookupError):
        await msg.download()  # no main media to choose
    with pytest.raises(wx.CdnError, match="no aes_key"):
        await msg.download(ref)  # asked for explicitly: a clear error, not ciphertext
    assert fake_ilink.requests_to("cdn_download") == []


async def test_an_image_without_a_key_is_downloaded_as_stored(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, autojump_clock: trio.abc.Clock
) -> None:
    obj = fake_ilink.cdn.store(b"picture")
    fake_ilink.inject_message(
        USER, [{"type": 2, "image_item": {"media": {"encrypt_query_param": obj.param}}}]
    )
    msg = await grab_one(fake_ilink, ilink_client)
    assert await msg.download() == obj.ciphertext  # as both references do


@pytest.mark.parametrize("delta", [-1, 1])
async def test_a_file_whose_size_differs_from_its_len_is_not_saved(
    fake_ilink: FakeILinkServer,
    ilink_client: wx.ILinkClient,
    autojump_clock: trio.abc.Clock,
    tmp_path: Path,
    delta: int,
) -> None:
    # A deliberate check the reference does not make (docs/deviations.md).
    obj = fake_ilink.cdn.store(b"0123456789")
    media = {"encrypt_query_param": obj.param, "aes_key": base64.b64encode(obj.key).decode()}
    item = {"media": media, "file_name": "n.txt", "len": str(10 + delta)}
    fake_ilink.inject_message(USER, [{"type": 4, "file_item": item}])
    msg = await grab_one(fake_ilink, ilink_client)
    with pytest.raises(wx.CdnError, match=f"downloaded 10 bytes, the message said {10 + delta}"):
        await msg.download(to=tmp_path)
    assert list(tmp_path.iterdir()) == []
