"""The public surface: ``__all__`` hygiene, module paths, stable names, lazy imports."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import types
from typing import Any

import pytest

import weixin_trio
import weixin_trio.testing

PUBLIC_MODULES = [
    "weixin_trio",
    "weixin_trio.testing",
    "weixin_trio.store",
    "weixin_trio.markdown",
    "weixin_trio.text",
    "weixin_trio.crypto",
    "weixin_trio.cdn",
    "weixin_trio.media",
    "weixin_trio.redis",
    "weixin_trio.login",
    "weixin_trio.voice",
]

#: The pinned surface of the public submodules: a change here is a change for users.
PINNED_ALL = {
    "weixin_trio.login": [
        "DEFAULT_DEADLINE",
        "DEFAULT_REDIRECT_HOSTS",
        "MAX_LOCAL_TOKENS",
        "MAX_POLL_FAILURES",
        "MAX_QR_CODES",
        "STATUS_POLL_TIMEOUT",
        "Account",
        "Action",
        "AskVerifyCode",
        "Done",
        "LoginResult",
        "Poll",
        "QrCode",
        "QrLoginCancelled",
        "QrLoginError",
        "QrLoginExpired",
        "QrLoginMachine",
        "QrLoginTimeout",
        "Refresh",
        "VerifyCodeBlocked",
        "login",
    ],
    "weixin_trio.voice": [
        "SILK_SAMPLE_RATE",
        "VoiceCodecUnavailable",
        "is_silk",
        "pcm_to_silk",
        "silk_duration_ms",
        "silk_to_wav",
        "wav_to_silk",
    ],
    "weixin_trio.redis": [
        "FanoutStatistics",
        "FanoutWorker",
        "LeaseCoordinator",
        "LeasePlan",
        "LeasedAccounts",
        "Leases",
        "RedisStore",
        "StreamPublisher",
        "agree_partitions",
        "fair_share",
        "open_fanout_worker",
        "open_leased_accounts",
        "open_redis_store",
        "partition_of",
        "plan_leases",
    ],
    "weixin_trio.testing": [
        "FakeAccount",
        "FakeILinkServer",
        "FakeRequest",
        "FakeResponse",
        "Fault",
        "ProtocolIssue",
        "RecordedRequest",
        "RecordedSend",
    ],
}

#: What users call on a client (DESIGN §3): the endpoints, the high-level sends, the
#: send window, runs, typing and downloads. Internal helpers are private.
CLIENT_SURFACE = {
    "account_id",
    "base_url",
    "cdn_base_url",
    "download",
    "get_bot_qrcode",
    "get_config",
    "get_qrcode_status",
    "get_updates",
    "get_upload_url",
    "notify_start",
    "notify_stop",
    "run",
    "send_file",
    "send_image",
    "send_media",
    "send_message",
    "send_text",
    "send_typing",
    "send_video",
    "send_voice",
    "send_window",
    "typing",
}

#: DESIGN §3: names outside checks and examples rely on.
STABLE_NAMES = [
    "open_client",
    "open_monitor",
    "run_monitor",
    "Message",
    "FileStore",
    "MemoryStore",
    "Backoff",
    "WeixinError",
    "ApiError",
    "StaleTokenError",
    "RateLimitedError",
    "SendWindowClosedError",
    "SendRetryPolicy",
    "TransportError",
    "ProtocolError",
    "CdnError",
    "MonitorCrashed",
    "StoreLockedError",
]


def isort_style_key(name: str) -> tuple[int, list[Any]]:
    """The order ruff's RUF022 enforces (the project lints ``__all__`` with it).

    SCREAMING_SNAKE_CASE first, then CamelCase, then everything else; within a group a
    natural sort (digit runs compare as numbers), case-sensitive.
    """
    if len(name) > 1 and name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name) if p]
    return group, parts


def _all_of(module_name: str) -> list[str] | None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    return None if names is None else list(names)


def test_isort_style_key() -> None:
    names = ["open_client", "Backoff", "DEFAULT_10", "ApiError", "__version__", "DEFAULT_2"]
    assert sorted(names, key=isort_style_key) == [
        "DEFAULT_2",
        "DEFAULT_10",
        "ApiError",
        "Backoff",
        "__version__",
        "open_client",
    ]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_dunder_all_is_sorted_unique_and_resolvable(module_name: str) -> None:
    names = _all_of(module_name)
    if names is None:
        assert module_name not in ("weixin_trio", "weixin_trio.testing", "weixin_trio.store")
        return
    assert names, module_name
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    assert all(isinstance(n, str) for n in names)
    # Ordered as ruff (RUF022) keeps it: constants, classes, functions; each group in
    # case-sensitive order, so plain ``sorted()`` holds inside every group.
    assert names == sorted(names, key=isort_style_key)
    for group in range(3):
        members = [n for n in names if isort_style_key(n)[0] == group]
        assert members == sorted(members)
    module = importlib.import_module(module_name)
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_names_are_all_exported(module_name: str) -> None:
    names = _all_of(module_name)
    if names is None:
        return
    module = importlib.import_module(module_name)
    public = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and not isinstance(obj, types.ModuleType)
        and not (module_name != "weixin_trio" and getattr(obj, "__module__", None) == "typing")
        and name not in ("annotations",)
    }
    if module_name == "weixin_trio":
        assert public - set(names) == set()
    else:
        # Submodules may hold private helpers imported for their own use; what they
        # define themselves and do not export must start with "_".
        own = {
            name
            for name in public
            if getattr(vars(module)[name], "__module__", module_name) == module_name
            and (inspect.isclass(vars(module)[name]) or inspect.isfunction(vars(module)[name]))
        }
        assert own - set(names) == set()


def test_public_objects_report_the_package_module() -> None:
    leaks = {}
    for name in weixin_trio.__all__:
        obj = getattr(weixin_trio, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if obj.__module__ != "weixin_trio":
                leaks[name] = obj.__module__
        else:
            assert isinstance(obj, str), (name, obj)  # constants and __version__ only
    assert leaks == {}


def test_version_is_a_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-].*)?", weixin_trio.__version__)


@pytest.mark.parametrize("cls", [weixin_trio.ILinkClient, weixin_trio.Monitor])
def test_handles_have_no_public_constructor(cls: type[Any]) -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        cls()
    with pytest.raises(TypeError, match="no public constructor"):
        cls(token="t", base_url="https://x.invalid")


@pytest.mark.parametrize("name", STABLE_NAMES)
def test_stable_names_exist(name: str) -> None:
    assert name in weixin_trio.__all__
    obj = getattr(weixin_trio, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj)


def test_error_tree() -> None:
    wx = weixin_trio
    for name in STABLE_NAMES:
        obj = getattr(wx, name)
        if name.endswith(("Error", "Crashed")):
            assert issubclass(obj, wx.WeixinError), name
    for sub in (wx.StaleTokenError, wx.RateLimitedError):
        assert issubclass(sub, wx.ApiError)
    assert issubclass(wx.WeixinError, Exception)
    assert not issubclass(wx.WeixinError, BaseExceptionGroup)


def test_testing_kit_names() -> None:
    assert "FakeILinkServer" in weixin_trio.testing.__all__
    assert inspect.isclass(weixin_trio.testing.FakeILinkServer)
    plugin = importlib.import_module("weixin_trio.testing.pytest_plugin")
    assert callable(plugin.fake_ilink)
    assert callable(plugin.ilink_client)


def test_import_does_not_load_optional_heavy_modules() -> None:
    # Baseline: our dependencies themselves (httpx imports its CLI, and rich with it,
    # when click and pygments happen to be installed); only what weixin_trio adds counts.
    code = (
        "import sys, attrs, cattrs, httpx, trio\n"
        "before = set(sys.modules)\n"
        "import weixin_trio\n"
        "new = set(sys.modules) - before\n"
        "print(' '.join(m for m in ('cryptography', 'rich', 'segno', 'pilk')"
        " if any(k == m or k.startswith(m + '.') for k in new)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""
    assert proc.stderr == ""


def test_import_check_can_see_a_loaded_module() -> None:
    """The subprocess probe above works: importing ``cryptography`` shows up."""
    code = (
        "import sys, weixin_trio.crypto as c\n"
        "c.encrypt_aes_ecb(bytes(16), bytes(16))\n"
        "print('cryptography' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("module_name", sorted(PINNED_ALL))
def test_public_submodule_surface_is_pinned(module_name: str) -> None:
    assert _all_of(module_name) == PINNED_ALL[module_name]


def test_testing_plugin_module_path_is_stable() -> None:
    plugin = importlib.import_module("weixin_trio.testing.pytest_plugin")
    assert {"fake_ilink", "ilink_client"} <= set(vars(plugin))


def test_client_public_members_are_the_user_facing_ones() -> None:
    public = {name for name in dir(weixin_trio.ILinkClient) if not name.startswith("_")}
    assert public == CLIENT_SURFACE
