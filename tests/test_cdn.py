"""Tests of weixin_trio.cdn: URL building, URL choice and the host allow-list."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, strategies as st

from tests._vectors import load_vectors, vector_id
from weixin_trio import CdnError
from weixin_trio.cdn import (
    DEFAULT_CDN_HOSTS,
    check_cdn_host,
    choose_download_url,
    choose_upload_url,
    download_url,
    encode_uri_component,
    upload_url,
)

BASE = "https://novac2c.cdn.weixin.qq.com/c2c"
SECRET = "SECRET-capability-123"


def _build(inp: dict[str, Any]) -> str:
    if inp["fn"] == "download":
        return download_url(inp["cdn_base_url"], inp["encrypted_query_param"])
    if inp["fn"] == "upload":
        return upload_url(inp["cdn_base_url"], inp["upload_param"], inp["filekey"])
    pytest.fail(f"unknown fn {inp['fn']!r}")


@pytest.mark.parametrize("vector", load_vectors("cdn_url"), ids=vector_id)
def test_cdn_url_vector(vector: dict[str, Any]) -> None:
    inp = vector["input"]
    reference = vector["expected"]["url"]
    url = _build(inp)
    base = inp["cdn_base_url"]
    assert reference.startswith(base)
    if vector.get("reference_quirk"):
        # reference_quirk: the reference appends "/download" to a base ending in "/"
        # ("…/c2c//download"); we drop trailing slashes of the base first.
        assert base.endswith("/")
        assert url == base.rstrip("/") + reference[len(base) :]
        assert "//download" not in url
        assert "//upload" not in url
    else:
        assert url == reference


def test_appendix_b_download_url() -> None:
    assert (
        download_url(BASE, "a+b/c=")
        == "https://novac2c.cdn.weixin.qq.com/c2c/download?encrypted_query_param=a%2Bb%2Fc%3D"
    )


@pytest.mark.parametrize(
    ("base", "download", "upload"),
    [
        (
            "https://proxy/c2c?x=1",
            "https://proxy/c2c/download?x=1&encrypted_query_param=p",
            "https://proxy/c2c/upload?x=1&encrypted_query_param=p&filekey=k",
        ),
        (
            "https://proxy/c2c/?x=1#f",
            "https://proxy/c2c/download?x=1&encrypted_query_param=p",
            "https://proxy/c2c/upload?x=1&encrypted_query_param=p&filekey=k",
        ),
    ],
)
def test_a_cdn_base_with_a_query_keeps_it_and_the_action_goes_into_the_path(
    base: str, download: str, upload: str
) -> None:
    # Sibling of join_url (docs/deviations.md): the reference's concatenation would put
    # "/download" inside the query.
    assert download_url(base, "p") == download
    assert upload_url(base, "p", "k") == upload


def test_upload_url_example() -> None:
    assert upload_url(BASE, "eyJ2IjoxfQ==", "5b0e8f1d2c3a4b5c6d7e8f9011223344") == (
        "https://novac2c.cdn.weixin.qq.com/c2c/upload?encrypted_query_param=eyJ2IjoxfQ%3D%3D"
        "&filekey=5b0e8f1d2c3a4b5c6d7e8f9011223344"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a%20b"),
        ("~!*()'-_.", "~!*()'-_."),
        ("=&/+?#%", "%3D%26%2F%2B%3F%23%25"),
        ("中", "%E4%B8%AD"),
        ("😀", "%F0%9F%98%80"),
        ("", ""),
    ],
)
def test_encode_uri_component(value: str, encoded: str) -> None:
    assert encode_uri_component(value) == encoded


def test_encode_uri_component_lone_surrogate() -> None:
    with pytest.raises(CdnError):
        encode_uri_component("a\ud800b")


@given(st.text())
def test_encode_uri_component_properties(value: str) -> None:
    encoded = encode_uri_component(value)
    assert re.fullmatch(r"[A-Za-z0-9\-_.!~*'()%]*", encoded)
    assert unquote(encoded, errors="strict") == value


def test_download_prefers_full_url() -> None:
    full = "https://cdn.example/dl?x=1"
    assert choose_download_url(BASE, encrypt_query_param="q=1", full_url=full) == full
    assert choose_download_url(BASE, encrypt_query_param=None, full_url=full) == full


def test_download_full_url_is_trimmed() -> None:
    # The reference uses full_url verbatim; we trim surrounding whitespace.
    full = "https://cdn.example/dl?x=1"
    assert choose_download_url(BASE, encrypt_query_param="q", full_url=f" \t{full}\n") == full
    assert choose_download_url(BASE, encrypt_query_param="q", full_url=f"\ufeff{full}") == full


@pytest.mark.parametrize("blank", [None, "", "   ", "\n"])
def test_download_falls_back_to_built_url(blank: str | None) -> None:
    url = choose_download_url(BASE, encrypt_query_param="q=1", full_url=blank)
    assert url == f"{BASE}/download?encrypted_query_param=q%3D1"


@pytest.mark.parametrize("param", [None, ""])
def test_download_without_anything_fails(param: str | None) -> None:
    with pytest.raises(CdnError, match="no CDN download URL"):
        choose_download_url(BASE, encrypt_query_param=param, full_url=" ")


def test_upload_prefers_full_url() -> None:
    full = "https://novac2c.cdn.weixin.qq.com/c2c/upload?encrypted_query_param=x&filekey=k"
    url = choose_upload_url(BASE, upload_full_url=f"  {full} ", upload_param="p", filekey="k")
    assert url == full


@pytest.mark.parametrize("blank", [None, "", " \t "])
def test_upload_falls_back_to_built_url(blank: str | None) -> None:
    url = choose_upload_url(BASE, upload_full_url=blank, upload_param="a+b", filekey="f k")
    assert url == f"{BASE}/upload?encrypted_query_param=a%2Bb&filekey=f%20k"


@pytest.mark.parametrize("param", [None, ""])
def test_upload_without_anything_fails(param: str | None) -> None:
    with pytest.raises(CdnError, match="no CDN upload URL"):
        choose_upload_url(BASE, upload_full_url=None, upload_param=param, filekey="k")


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/download?encrypted_query_param={SECRET}",
        f"https://NOVAC2C.cdn.weixin.qq.com/c2c/download?x={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com./c2c/download?x={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com:443/c2c/download?x={SECRET}",
        f"http://novac2c.cdn.weixin.qq.com/c2c/download?x={SECRET}",
        f"HTTPS://novac2c.cdn.weixin.qq.com/c2c/download?x={SECRET}",
    ],
)
def test_allowed_hosts(url: str) -> None:
    check_cdn_host(url, DEFAULT_CDN_HOSTS)


def test_wildcard_hosts() -> None:
    allowed = ["*.cdn.example", "exact.example."]
    check_cdn_host("https://a.cdn.example/x", allowed)
    check_cdn_host("https://b.a.cdn.example/x", allowed)
    check_cdn_host("https://EXACT.example/x", allowed)
    for refused in (
        "https://cdn.example/x",
        "https://evilcdn.example/x",
        "https://x.exact.example",
    ):
        with pytest.raises(CdnError):
            check_cdn_host(refused, allowed)


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example/c2c/download?encrypted_query_param={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com.evil.example/download?p={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com@evil.example/download?p={SECRET}",
        f"https://user:{SECRET}@novac2c.cdn.weixin.qq.com/download",
        f"https://evil.example\\@novac2c.cdn.weixin.qq.com/download?p={SECRET}",
        f"ftp://novac2c.cdn.weixin.qq.com/download?p={SECRET}",
        f"file:///etc/passwd?p={SECRET}",
        f"javascript:alert(1)//novac2c.cdn.weixin.qq.com?p={SECRET}",
        f"//novac2c.cdn.weixin.qq.com/download?p={SECRET}",
        f"/c2c/download?p={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com:99999/download?p={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com:port/download?p={SECRET}",
        f"https://[::1/download?p={SECRET}",
        f"https://novac2c.cdn.weixin.qq.com /download?p={SECRET}",
        f"https://evil.exa\tmple/download?p={SECRET}",
        f"https://novac2c\n.cdn.weixin.qq.com/download?p={SECRET}",
        f"https:///download?p={SECRET}",
        "",
    ],
)
def test_refused_hosts_do_not_leak_the_query(url: str) -> None:
    with pytest.raises(CdnError) as info:
        check_cdn_host(url, DEFAULT_CDN_HOSTS)
    message = str(info.value)
    assert message
    assert SECRET not in message
    assert "?" not in message
    assert "/download" not in message


def test_user_info_is_refused_by_name() -> None:
    with pytest.raises(CdnError, match="user info"):
        check_cdn_host("https://novac2c.cdn.weixin.qq.com@evil.example/x", DEFAULT_CDN_HOSTS)
    with pytest.raises(CdnError, match="http or https"):
        check_cdn_host("gopher://novac2c.cdn.weixin.qq.com/x", DEFAULT_CDN_HOSTS)
    with pytest.raises(CdnError, match=r"'evil\.example' is not in the allowed hosts"):
        check_cdn_host("https://EVIL.example./x?y", DEFAULT_CDN_HOSTS)


def test_empty_allow_list_refuses_everything() -> None:
    with pytest.raises(CdnError):
        check_cdn_host(f"{BASE}/download?x=1", [])


def test_allow_list_must_not_be_a_string() -> None:
    with pytest.raises(TypeError):
        check_cdn_host(f"{BASE}/download?x=1", "novac2c.cdn.weixin.qq.com")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_built_urls_pass_the_default_allow_list(param: str) -> None:
    check_cdn_host(download_url(BASE, param), DEFAULT_CDN_HOSTS)
    check_cdn_host(upload_url(BASE, param, param), DEFAULT_CDN_HOSTS)
