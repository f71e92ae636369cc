"""Remote media: fetching an http(s) URL safely (host policy after DNS, caps, redirects).

Real loopback sockets (real time, each test bounded by ``trio.fail_after``); DNS
answers come from ``trio.socket.set_custom_hostname_resolver``.
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

import weixin_trio as wx
from tests._helpers import until
from weixin_trio._client import remote_media
from weixin_trio._client.remote_media import fetch_remote, is_remote, redact_url
from weixin_trio._http import connect_tcp
from weixin_trio.media import MediaKind

from ._remote_server import PNG, Route, Server, install_dns

if TYPE_CHECKING:
    from pathlib import Path

    from weixin_trio.testing import FakeILinkServer

pytestmark = pytest.mark.slow

USER = "alice@im.wechat"
LOOPBACK = wx.RemoteMediaPolicy(allow_networks=["127.0.0.1/32"], timeout=10)


@pytest.fixture(autouse=True)
def _temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def _leftovers(tmp_path: Path) -> list[str]:
    return [p.name for p in (tmp_path / "temp").iterdir()]


async def _fetch(
    url: str, kind: MediaKind | None = MediaKind.IMAGE, policy: wx.RemoteMediaPolicy = LOOPBACK
) -> tuple[bytes, remote_media.RemoteFile]:
    async with fetch_remote(url, kind=kind, policy=policy) as remote:
        return remote.path.read_bytes(), remote


def test_is_remote_and_redaction() -> None:
    assert is_remote("https://x.test/a.png")
    assert is_remote("HTTP://x.test/a.png")
    assert not is_remote("photo.png")
    assert not is_remote(b"https://x.test/")
    import httpx

    assert is_remote(httpx.URL("https://x.test/a.png"))
    assert (
        redact_url("https://user:pw@x.test:8443/a/b.png?sig=SECRET#frag")
        == "https://x.test:8443/a/b.png?..."
    )


async def test_a_name_resolving_to_loopback_is_refused_by_default(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/cat.png": Route(body=PNG)}).start(nursery)
            install_dns({"evil.test": ["127.0.0.1"]})
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(
                    f"http://evil.test:{server.port}/cat.png", policy=wx.RemoteMediaPolicy()
                )
            assert info.value.reason == "forbidden_address"
            assert "loopback" in str(info.value)
            assert server.paths == []  # never connected
            nursery.cancel_scope.cancel()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "CGNAT"),
        ("::1", "loopback"),
        ("fd00::1", "private"),
    ],
)
async def test_private_answers_are_refused_before_any_connect(
    answer: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialled: list[str] = []

    async def connect(scheme: str, host: str, ip: str, port: int) -> trio.abc.Stream:
        dialled.append(ip)
        raise OSError("not reached")

    monkeypatch.setattr(remote_media, "open_remote_stream", connect)
    install_dns({"evil.test": [answer]})
    with pytest.raises(wx.RemoteMediaError) as info:
        await _fetch("https://evil.test/cat.png", policy=wx.RemoteMediaPolicy())
    assert info.value.reason == "forbidden_address"
    assert why in str(info.value)
    assert dialled == []


@pytest.mark.parametrize("literal", ["127.0.0.1", "[::1]", "[::ffff:10.0.0.1]", "2130706433"])
async def test_ip_literals_are_checked_too(literal: str) -> None:
    with pytest.raises(wx.RemoteMediaError) as info:
        await _fetch(f"http://{literal}/x.png", policy=wx.RemoteMediaPolicy())
    assert info.value.reason == "forbidden_address"


async def test_a_public_answer_is_dialled_with_the_name_for_host_and_sni(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection goes to the checked IP (no second lookup), the name rides along."""
    dialled: list[tuple[str, str, str, int]] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/cat.png": Route(body=PNG)}).start(nursery)

            async def connect(scheme: str, host: str, ip: str, port: int) -> trio.abc.Stream:
                dialled.append((scheme, host, ip, port))
                return await trio.open_tcp_stream("127.0.0.1", server.port)

            monkeypatch.setattr(remote_media, "open_remote_stream", connect)
            dns = install_dns({"media.example": ["10.9.9.9", "93.184.216.34"]})
            body, remote = await _fetch(
                "http://media.example/cat.png", policy=wx.RemoteMediaPolicy()
            )
            nursery.cancel_scope.cancel()
    assert body == PNG
    assert remote.mime == "image/png"
    assert remote.file_name == "cat.png"
    assert dialled == [("http", "media.example", "93.184.216.34", 80)]  # the private one skipped
    assert dns.asked == ["media.example"]  # resolved once
    assert server.hosts == ["media.example"]


async def test_tls_goes_to_the_resolved_ip_with_sni_for_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("media.test").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    monkeypatch.setattr(connect_tcp, "ssl_context", lambda: client_ctx)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/cat.png": Route(body=PNG)}).start(nursery, tls=server_ctx)
            install_dns({"media.test": ["127.0.0.1"]})
            body, _ = await _fetch(f"https://media.test:{server.port}/cat.png?sig=1")
            nursery.cancel_scope.cancel()
    assert body == PNG
    assert server.hosts == [f"media.test:{server.port}"]
    assert server.paths == ["/cat.png?sig=1"]


async def test_a_loopback_server_allowed_by_policy_serves_an_image(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            route = Route(body=PNG, headers=[("Content-Type", "application/octet-stream")])
            server = await Server({"/pics/cat": route}).start(nursery)
            body, remote = await _fetch(f"http://127.0.0.1:{server.port}/pics/cat", kind=None)
            nursery.cancel_scope.cancel()
    assert body == PNG
    assert remote.kind is MediaKind.IMAGE  # sniffed, although the server said otherwise
    assert remote.file_name == "cat.png"
    assert remote.size == len(PNG)
    assert _leftovers(tmp_path) == []  # removed when the block ended


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_cap_is_refused(chunked: bool, tmp_path: Path) -> None:
    policy = wx.RemoteMediaPolicy(allow_networks=["127.0.0.1/32"], max_bytes=len(PNG) - 1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/big.png": Route(body=PNG, chunked=chunked)}).start(nursery)
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"http://127.0.0.1:{server.port}/big.png", policy=policy)
            nursery.cancel_scope.cancel()
    assert info.value.reason == "too_large"
    assert ("Content-Length" in str(info.value)) is not chunked
    assert _leftovers(tmp_path) == []


async def test_an_endless_chunked_body_is_cut_off_at_the_cap(tmp_path: Path) -> None:
    policy = wx.RemoteMediaPolicy(allow_networks=["127.0.0.1/32"], max_bytes=1_000_000)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            route = Route(body=PNG, chunked=True, endless=True)
            server = await Server({"/x.png": route}).start(nursery)
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"http://127.0.0.1:{server.port}/x.png", policy=policy)
            nursery.cancel_scope.cancel()
    assert info.value.reason == "too_large"
    assert _leftovers(tmp_path) == []


async def test_cancellation_mid_download_leaves_nothing(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            route = Route(body=PNG, chunked=True, endless=True)
            server = await Server({"/x.png": route}).start(nursery)
            policy = wx.RemoteMediaPolicy(allow_networks=["127.0.0.1/32"], max_bytes=10**12)
            with trio.CancelScope() as scope:
                nursery.start_soon(_fetch, f"http://127.0.0.1:{server.port}/x.png", None, policy)
                await server.first_chunk_sent.wait()
                await until(lambda: any(p.stat().st_size for p in (tmp_path / "temp").iterdir()))
                nursery.cancel_scope.cancel()
            assert not scope.cancelled_caught
    assert _leftovers(tmp_path) == []


async def test_redirects_are_followed_and_rechecked() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = Server()
            await server.start(nursery)
            server.routes["/a"] = Route(status=302, headers=[("Location", "/b.png")])
            server.routes["/b.png"] = Route(body=PNG)
            server.routes["/evil"] = Route(
                status=301, headers=[("Location", "http://internal.test/secret.png")]
            )
            server.routes["/loop"] = Route(status=307, headers=[("Location", "/loop")])
            base = f"http://127.0.0.1:{server.port}"
            body, _ = await _fetch(f"{base}/a")
            assert body == PNG
            install_dns({"internal.test": ["10.0.0.1"]})
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"{base}/evil")
            assert info.value.reason == "forbidden_address"
            assert info.value.url == "http://internal.test/secret.png"
            server.paths.clear()
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"{base}/loop")
            assert info.value.reason == "too_many_redirects"
            assert len(server.paths) == 6  # the first request and 5 redirects
            nursery.cancel_scope.cancel()


async def test_wrong_content_and_statuses_are_refused() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            html = Route(body=b"<html>hello</html>", headers=[("Content-Type", "image/png")])
            server = await Server({"/fake.png": html}).start(nursery)
            base = f"http://127.0.0.1:{server.port}"
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"{base}/fake.png")
            assert info.value.reason == "bad_content_type"
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"{base}/fake.png", kind=MediaKind.VIDEO)
            assert info.value.reason == "bad_content_type"
            # A file send takes anything.
            body, remote = await _fetch(f"{base}/fake.png", kind=MediaKind.FILE)
            assert body.startswith(b"<html>")
            assert remote.kind is MediaKind.FILE
            with pytest.raises(wx.RemoteMediaError) as info:
                await _fetch(f"{base}/missing.png?token=SECRET")
            assert (info.value.reason, info.value.status_code) == ("http_status", 404)
            assert "SECRET" not in str(info.value)
            nursery.cancel_scope.cancel()


async def test_bad_urls_and_unresolvable_hosts() -> None:
    install_dns({})
    for url, reason in [
        ("ftp://x.test/a.png", "bad_url"),
        ("http:///a.png", "bad_url"),
        ("http://nowhere.test/a.png", "connection"),
    ]:
        with pytest.raises(wx.RemoteMediaError) as info:
            await _fetch(url)
        assert info.value.reason == reason
    with pytest.raises(wx.RemoteMediaError) as info:
        await _fetch("http://x.test/a.png", policy=wx.RemoteMediaPolicy(allow_http=False))
    assert info.value.reason == "bad_url"


async def test_no_query_string_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = Server()
            await server.start(nursery)
            server.routes["/a"] = Route(status=302, headers=[("Location", "/b.png?sig=SECRET")])
            server.routes["/b.png"] = Route(body=PNG)
            await _fetch(f"http://127.0.0.1:{server.port}/a?token=SECRET")
            nursery.cancel_scope.cancel()
    assert "redirected" in caplog.text
    assert "SECRET" not in caplog.text


async def test_send_image_from_a_url_reaches_the_cdn(
    fake_ilink: FakeILinkServer, tmp_path: Path
) -> None:
    """End to end: fetched, uploaded encrypted, decrypted by the fake: the same bytes."""
    fake_ilink.default.issued_tokens.add("ctx")
    seen: list[wx.Outgoing] = []

    def note(out: wx.Outgoing) -> wx.Outgoing:
        seen.append(out)
        return out

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/img/cat.png": Route(body=PNG)}).start(nursery)
            async with wx.open_client(
                token=fake_ilink.token,
                base_url=fake_ilink.base_url,
                cdn_base_url=fake_ilink.cdn_base_url,
                transport=fake_ilink.transport(),
                pacing=None,
                context_tokens={USER: "ctx"},
                remote_media=LOOPBACK,
                before_send=note,
            ) as client:
                url = f"http://127.0.0.1:{server.port}/img/cat.png?sig=1"
                result = await client.send_image(USER, url, caption="a cat")
                await client.send_media(USER, f"http://127.0.0.1:{server.port}/img/cat.png")
                with pytest.raises(wx.RemoteMediaError):
                    await client.send_video(USER, url)
            nursery.cancel_scope.cancel()
    assert result.confirmed
    [(item_type, plaintext, _), (routed_type, _, _)] = fake_ilink.sent_media(USER)
    assert (item_type, routed_type) == (2, 2)  # images, the second one routed by its bytes
    assert plaintext == PNG
    assert fake_ilink.sent_texts(USER)[0] == "a cat"
    assert [o.kind for o in seen] == ["image", "image", "video"]
    assert seen[0].source == url
    assert _leftovers(tmp_path) == []


async def test_a_url_send_that_cannot_be_delivered_downloads_nothing(
    fake_ilink: FakeILinkServer, ilink_client: wx.ILinkClient, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/cat.png": Route(body=PNG)}).start(nursery)
            url = f"http://127.0.0.1:{server.port}/cat.png"
            with pytest.raises(wx.NoContextTokenError):
                await ilink_client.send_image("bob@im.wechat", url)
            assert server.paths == []
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (PNG[:32], "image/png"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
        (b"\x00\x00\x00\x18ftypheic", "image/heic"),
        (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_sniffing(head: bytes, mime: str | None) -> None:
    from weixin_trio._proto.media_sniff import sniff_mime

    assert sniff_mime(head) == mime


async def test_non_ascii_paths_and_hosts_are_encoded() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await Server({"/%E7%8C%AB%20cat.png": Route(body=PNG)}).start(nursery)
            install_dns({"xn--fiq228c.test": ["127.0.0.1"]})
            body, remote = await _fetch(f"http://中文.test:{server.port}/猫 cat.png")
            nursery.cancel_scope.cancel()
    assert body == PNG
    assert server.hosts == [f"xn--fiq228c.test:{server.port}"]
    assert remote.file_name == "猫 cat.png"
