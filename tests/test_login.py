"""QR login: the sans-IO state machine (no event loop) and the trio driver vs the fake."""

from __future__ import annotations

import json
import math
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import trio
from hypothesis import given, strategies as st

from weixin_trio import ApiError, TransportError, WeixinError, _wire as w
from weixin_trio._client.open import open_client
from weixin_trio.login import (
    Account,
    AskVerifyCode,
    Done,
    LoginResult,
    Poll,
    QrCode,
    QrLoginCancelled,
    QrLoginError,
    QrLoginExpired,
    QrLoginMachine,
    QrLoginTimeout,
    Refresh,
    VerifyCodeBlocked,
    login,
)
from weixin_trio.testing import Fault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from weixin_trio._client.ilink_client import ILinkClient
    from weixin_trio.testing import FakeAccount, FakeILinkServer

QR_BASE = "https://ilinkai.weixin.qq.com"


# --- the state machine, no event loop ---------------------------------------------------


def qr_resp(n: int = 1) -> w.GetBotQrcodeResp:
    return w.GetBotQrcodeResp(
        qrcode=f"secret-session-{n}", qrcode_img_content=f"https://qr.example/l?qrcode=s{n}"
    )


def st_resp(status: str | None, **fields: Any) -> w.QrcodeStatusResp:
    return w.QrcodeStatusResp(status=status, **fields)


def confirmed(**fields: Any) -> w.QrcodeStatusResp:
    values = {
        "bot_token": "tok-0123456789abcdef",
        "ilink_bot_id": "b1@im.bot",
        "baseurl": "https://api.example",
        "ilink_user_id": "u1@im.wechat",
        **fields,
    }
    return st_resp("confirmed", **values)


def machine(base: str = QR_BASE, **kwargs: Any) -> QrLoginMachine:
    m = QrLoginMachine(qr_base_url=base, clock=lambda: 1234.5, **kwargs)
    m.on_qrcode(qr_resp())
    return m


def test_first_qrcode() -> None:
    m = QrLoginMachine(qr_base_url=QR_BASE)
    with pytest.raises(RuntimeError):
        m.on_status(st_resp("wait"))
    qr = m.on_qrcode(qr_resp())
    assert qr == QrCode("https://qr.example/l?qrcode=s1", 1, 3)
    assert m.qrcode == "secret-session-1"
    assert m.poll_base_url == QR_BASE
    assert m.first_poll() == Poll(None, 0.0)
    assert "s1" not in repr(qr)
    assert "secret" not in repr(m)


@pytest.mark.parametrize(
    "resp", [w.GetBotQrcodeResp(qrcode_img_content="x"), w.GetBotQrcodeResp(qrcode="q")]
)
def test_qrcode_response_incomplete(resp: w.GetBotQrcodeResp) -> None:
    with pytest.raises(QrLoginError, match="lacks"):
        QrLoginMachine(qr_base_url=QR_BASE).on_qrcode(resp)


@pytest.mark.parametrize("base", ["ilinkai.weixin.qq.com", "ftp://x.weixin.qq.com", "https://"])
def test_bad_qr_base(base: str) -> None:
    with pytest.raises(ValueError, match="qr_base_url"):
        QrLoginMachine(qr_base_url=base)


@pytest.mark.parametrize("status", ["wait", None, "", "something_new"])
def test_wait_and_unknown_keep_polling(status: str | None) -> None:
    m = machine()
    assert m.on_status(st_resp(status)) == Poll(None, 1.0)
    assert not m.scanned


def test_scaned() -> None:
    m = machine()
    assert m.on_status(st_resp("scaned")) == Poll(None, 1.0)
    assert m.scanned
    assert m.status == "scaned"


def test_verify_code_kept_until_accepted() -> None:
    m = machine()
    assert m.on_status(st_resp("need_verifycode")) == AskVerifyCode(wrong=False)
    assert m.scanned
    assert m.on_verify_code("4821") == Poll("4821", 0.0)
    # not decided yet: the code is sent again with every poll
    assert m.on_status(st_resp("wait")) == Poll("4821", 1.0)
    assert m.on_poll_timeout() == Poll("4821", 1.0)
    assert m.on_status(st_resp("scaned")) == Poll(None, 1.0)
    assert m.verify_code is None
    assert "4821" not in repr(Poll("4821", 0.0))


def test_wrong_verify_code_asks_again() -> None:
    m = machine()
    m.on_status(st_resp("need_verifycode"))
    m.on_verify_code("0000")
    assert m.on_status(st_resp("need_verifycode")) == AskVerifyCode(wrong=True)
    assert m.verify_code is None
    assert m.on_verify_code("4821") == Poll("4821", 0.0)
    assert m.on_status(st_resp("scaned")) == Poll(None, 1.0)
    with pytest.raises(ValueError, match="empty"):
        m.on_verify_code("")


@pytest.mark.parametrize("status", ["expired", "verify_code_blocked"])
def test_refresh_budget(status: str) -> None:
    m = machine()
    m.on_status(st_resp("need_verifycode"))
    m.on_verify_code("0000")
    for n in (2, 3):
        assert m.on_status(st_resp(status)) == Refresh(status)
        assert m.verify_code is None
        assert not m.scanned
        with pytest.raises(RuntimeError):
            _ = m.qrcode
        assert m.on_qrcode(qr_resp(n)) == QrCode(f"https://qr.example/l?qrcode=s{n}", n, 3)
        assert m.on_status(st_resp("scaned")) == Poll(None, 1.0)
    error = QrLoginExpired if status == "expired" else VerifyCodeBlocked
    with pytest.raises(error):
        m.on_status(st_resp(status))
    with pytest.raises(RuntimeError):
        m.on_qrcode(qr_resp(4))
    with pytest.raises(RuntimeError):
        m.on_status(st_resp("wait"))


def test_smaller_budget() -> None:
    m = machine(max_qr_codes=1)
    with pytest.raises(QrLoginExpired, match="all 1 QR codes"):
        m.on_status(st_resp("expired"))


def test_redirect_moves_polling_and_survives_refresh() -> None:
    m = machine()
    assert m.on_status(st_resp("scaned_but_redirect", redirect_host="idc2.weixin.qq.com")) == (
        Poll(None, 1.0)
    )
    assert m.scanned
    assert m.poll_base_url == "https://idc2.weixin.qq.com"
    assert m.qr_base_url == QR_BASE
    m.on_status(st_resp("expired"))
    m.on_qrcode(qr_resp(2))
    assert m.poll_base_url == "https://idc2.weixin.qq.com"


def test_redirect_without_host_keeps_polling_host() -> None:
    m = machine()
    assert m.on_status(st_resp("scaned_but_redirect")) == Poll(None, 1.0)
    assert m.poll_base_url == QR_BASE


@pytest.mark.parametrize(
    ("base", "host", "expected"),
    [
        (QR_BASE, "IDC2.Weixin.QQ.com", "https://idc2.weixin.qq.com"),
        (QR_BASE, "a.b.weixin.qq.com:8443", "https://a.b.weixin.qq.com:8443"),
        (QR_BASE, "ilinkai.weixin.qq.com", "https://ilinkai.weixin.qq.com"),
        ("http://127.0.0.1:8080", "127.0.0.1:9090", "http://127.0.0.1:9090"),
        ("http://127.0.0.1:8080", "idc2.weixin.qq.com", "http://idc2.weixin.qq.com"),
        ("https://fake-ilink.invalid/p", "fake-ilink.invalid", "https://fake-ilink.invalid"),
    ],
)
def test_redirect_allowed(base: str, host: str, expected: str) -> None:
    m = machine(base)
    m.on_status(st_resp("scaned_but_redirect", redirect_host=host))
    assert m.poll_base_url == expected


@pytest.mark.parametrize(
    "host",
    [
        "evil.example.com",
        "weixin.qq.com",
        "idc2.weixin.qq.com.evil.com",
        "evilweixin.qq.com",
        "idc2.weixin.qq.com/ilink",
        "user@idc2.weixin.qq.com",
        "https://idc2.weixin.qq.com",
        "idc2.weixin.qq.com?x=1",
        "idc2.weixin.qq.com#x",
        "idc2.weixin.qq.com:0",
        "idc2.weixin.qq.com:99999",
        "idc2.weixin.qq.com:",
        "idc2 .weixin.qq.com",
        "-x.weixin.qq.com",
        "[::1]",
        "10.0.0.1",
        " ",
    ],
)
def test_redirect_rejected(host: str) -> None:
    m = machine()
    with pytest.raises(QrLoginError, match="redirect_host"):
        m.on_status(st_resp("scaned_but_redirect", redirect_host=host))
    assert m.poll_base_url == QR_BASE


def test_redirect_custom_patterns() -> None:
    m = machine(allowed_redirect_hosts=["idc.example.net", "*.corp.example"])
    m.on_status(st_resp("scaned_but_redirect", redirect_host="x.corp.example"))
    assert m.poll_base_url == "https://x.corp.example"
    m.on_status(st_resp("scaned_but_redirect", redirect_host="idc.example.net"))
    assert m.poll_base_url == "https://idc.example.net"
    with pytest.raises(QrLoginError):
        m.on_status(st_resp("scaned_but_redirect", redirect_host="idc2.weixin.qq.com"))


def test_machine_binded_redirect() -> None:
    m = machine()
    assert m.on_status(st_resp("binded_redirect")) == Done(None, already_bound=True)
    assert m.done


def test_confirmed() -> None:
    m = machine()
    action = m.on_status(confirmed())
    assert action == Done(
        Account(
            account_id="b1@im.bot",
            token="tok-0123456789abcdef",
            base_url="https://api.example",
            user_id="u1@im.wechat",
            created_at=1234.5,
        )
    )
    with pytest.raises(RuntimeError):
        m.on_status(st_resp("wait"))


@pytest.mark.parametrize(
    ("baseurl", "expected"),
    [
        (None, QR_BASE),
        ("", QR_BASE),
        ("  ", QR_BASE),
        ("idc3.weixin.qq.com", "https://idc3.weixin.qq.com"),
        (" https://x.example/p ", "https://x.example/p"),
    ],
)
def test_confirmed_base_url(baseurl: str | None, expected: str) -> None:
    action = machine().on_status(confirmed(baseurl=baseurl, ilink_user_id=None))
    assert isinstance(action, Done)
    assert action.account is not None
    assert action.account.base_url == expected
    assert action.account.user_id is None


@pytest.mark.parametrize("missing", ["bot_token", "ilink_bot_id"])
def test_confirmed_incomplete(missing: str) -> None:
    with pytest.raises(QrLoginError, match="lacks"):
        machine().on_status(confirmed(**{missing: None}))


def test_poll_failures() -> None:
    m = machine(max_poll_failures=10)
    delays = []
    for _ in range(9):
        retry = m.on_poll_failure()
        assert retry is not None
        delays.append(retry.delay)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert m.on_poll_failure() is None


@pytest.mark.parametrize("reset", ["status", "timeout"])
def test_poll_failures_reset(reset: str) -> None:
    m = machine(max_poll_failures=2)
    m.on_status(st_resp("need_verifycode"))
    m.on_verify_code("1")
    assert m.on_poll_failure() == Poll("1", 1.0)
    if reset == "status":
        m.on_status(st_resp("wait"))
    else:
        m.on_poll_timeout()
    assert m.on_poll_failure() is not None
    assert m.on_poll_failure() is None


# --- Account ----------------------------------------------------------------------------

ACCOUNT = Account("b1@im.bot", "tok-0123456789abcdef", "https://api.example", "u@im.wechat", 1.5)


def test_account_repr_hides_token() -> None:
    assert "0123456789abcdef" not in repr(ACCOUNT)
    assert "b1@im.bot" in repr(ACCOUNT)


def test_account_json_round_trip() -> None:
    data = json.loads(json.dumps(ACCOUNT.to_json()))
    assert data == {
        "account_id": "b1@im.bot",
        "token": "tok-0123456789abcdef",
        "base_url": "https://api.example",
        "user_id": "u@im.wechat",
        "created_at": 1.5,
    }
    assert Account.from_json(data) == ACCOUNT
    # stores may add keys; user_id is optional
    del data["user_id"]
    assert Account.from_json({**data, "extra": 1, "created_at": 1}).user_id is None


@given(
    account_id=st.text(min_size=1),
    token=st.text(min_size=1),
    base_url=st.text(min_size=1),
    user_id=st.none() | st.text(),
    created_at=st.floats(allow_nan=False, allow_infinity=False),
)
def test_account_json_round_trip_property(
    account_id: str, token: str, base_url: str, user_id: str | None, created_at: float
) -> None:
    account = Account(account_id, token, base_url, user_id, created_at)
    assert Account.from_json(json.loads(json.dumps(account.to_json()))) == account


def _without(key: str) -> dict[str, Any]:
    data = ACCOUNT.to_json()
    del data[key]
    return data


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_without("account_id"), "account_id"),
        (_without("token"), "token"),
        (_without("base_url"), "base_url"),
        (_without("created_at"), "created_at"),
        ({**ACCOUNT.to_json(), "token": 5}, "token"),
        ({**ACCOUNT.to_json(), "token": ""}, "token"),
        ({**ACCOUNT.to_json(), "account_id": None}, "account_id"),
        ({**ACCOUNT.to_json(), "base_url": ["x"]}, "base_url"),
        ({**ACCOUNT.to_json(), "user_id": 7}, "user_id"),
        ({**ACCOUNT.to_json(), "created_at": "1.5"}, "created_at"),
        ({**ACCOUNT.to_json(), "created_at": True}, "created_at"),
        ({**ACCOUNT.to_json(), "created_at": math.nan}, "created_at"),
        ({**ACCOUNT.to_json(), "created_at": None}, "created_at"),
        ([], "account"),
        ("{}", "account"),
    ],
)
def test_account_from_bad_json(data: object, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}\b|^account\.{field}:") as info:
        Account.from_json(data)
    assert "0123456789abcdef" not in str(info.value)


def test_errors_are_weixin_errors() -> None:
    for cls in (QrLoginExpired, VerifyCodeBlocked, QrLoginTimeout, QrLoginCancelled):
        assert issubclass(cls, QrLoginError)
    assert issubclass(QrLoginError, WeixinError)
    assert QrLoginError.__module__ == "weixin_trio.login"


# --- the driver against the fake -----------------------------------------------------------


@asynccontextmanager
async def qr_client(fake: FakeILinkServer) -> AsyncIterator[ILinkClient]:
    async with open_client(
        token=None, base_url=fake.base_url, transport=fake.transport(), pacing=None
    ) as client:
        yield client


class Screen:
    """Records the QR codes shown and lets a concurrent "user" wait for the next one."""

    def __init__(self) -> None:
        self.codes: list[QrCode] = []
        self._send, self._receive = trio.open_memory_channel[QrCode](math.inf)

    def show(self, qr: QrCode) -> None:
        self.codes.append(qr)
        self._send.send_nowait(qr)

    async def next(self) -> QrCode:
        return await self._receive.receive()


class Phone:
    """An ``ask_verify_code`` callback giving canned codes and recording ``wrong``."""

    def __init__(self, *codes: str | None) -> None:
        self.codes = list(codes)
        self.asked: list[bool] = []

    async def __call__(self, wrong: bool) -> str | None:
        self.asked.append(wrong)
        await trio.sleep(2)  # the user types
        return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]


def status_hosts(fake: FakeILinkServer) -> list[str]:
    return [r.headers["host"] for r in fake.requests_to("get_qrcode_status")]


async def scan_and_confirm(
    fake: FakeILinkServer,
    screen: Screen,
    box: list[FakeAccount],
    scan: dict[str, Any] | None = None,
    owner: str = "alice@im.wechat",
) -> None:
    """The user: wait for a QR code, scan it, confirm 12 s later (``box`` gets the account)."""
    await screen.next()
    await trio.sleep(8)  # the first status poll answers "wait" after its 5 s hold
    fake.scan_qr(**(scan or {}))
    await trio.sleep(12)
    box.append(fake.confirm_qr(owner_id=owner))


async def test_scan_and_confirm(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    wall_clock = time.time()
    screen, statuses, box = Screen(), list[str](), list["FakeAccount"]()
    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(scan_and_confirm, fake_ilink, screen, box)
        result = await login(client, on_qrcode=screen.show, on_status=statuses.append)
    [new] = box
    assert result == LoginResult(result.account, already_bound=False)
    account = result.account
    assert account is not None
    assert account.token == new.token
    assert account.account_id == new.bot_id
    assert account.base_url == fake_ilink.base_url
    assert account.user_id == "alice@im.wechat"
    assert wall_clock <= account.created_at <= time.time()
    assert new.token not in repr(result)
    assert statuses == ["wait", "scaned", "confirmed"]
    assert [qr.refresh_number for qr in screen.codes] == [1]
    [qr_request] = fake_ilink.requests_to("get_bot_qrcode")
    assert qr_request.body == {"local_token_list": 0}
    assert "authorization" not in qr_request.headers
    assert not fake_ilink.rejections
    assert set(status_hosts(fake_ilink)) == {"fake-ilink.invalid"}


async def test_async_callbacks_and_local_tokens(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    seen: list[str] = []

    async def on_qrcode(qr: QrCode) -> None:
        await trio.sleep(1)
        seen.append(qr.qrcode_img_content)
        fake_ilink.scan_qr()
        fake_ilink.confirm_qr()

    async def on_status(status: str) -> None:
        await trio.lowlevel.checkpoint()
        seen.append(status)

    async with qr_client(fake_ilink) as client:
        result = await login(
            client,
            on_qrcode=on_qrcode,
            on_status=on_status,
            local_tokens=[f"other-token-{i}" for i in range(12)],
        )
    assert result.account is not None
    assert seen[1:] == ["confirmed"]
    assert fake_ilink.requests_to("get_bot_qrcode")[0].body == {"local_token_list": 10}


async def test_verify_code_right_first_time(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box, phone = Screen(), list["FakeAccount"](), Phone("4821")
    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(scan_and_confirm, fake_ilink, screen, box, {"verify_code": "4821"})
        result = await login(client, on_qrcode=screen.show, ask_verify_code=phone)
    assert result.account is not None
    assert result.account.token == box[0].token
    assert phone.asked == [False]
    sent = [r.body.get("verify_code") for r in fake_ilink.requests_to("get_qrcode_status")]
    assert sent.count("4821") == 1
    assert sent[-1] is None  # accepted: no longer sent


async def test_verify_code_wrong_then_right(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box, phone = Screen(), list["FakeAccount"](), Phone("0000", "4821")
    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(scan_and_confirm, fake_ilink, screen, box, {"verify_code": "4821"})
        result = await login(client, on_qrcode=screen.show, ask_verify_code=phone)
    assert result.account is not None
    assert phone.asked == [False, True]
    sent = [r.body.get("verify_code") for r in fake_ilink.requests_to("get_qrcode_status")]
    assert [c for c in sent if c] == ["0000", "4821"]
    assert len(screen.codes) == 1


async def test_verify_code_blocked_refreshes(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box, phone = Screen(), list["FakeAccount"](), Phone("0000", "1111", "2222")

    async def user() -> None:
        await screen.next()
        fake_ilink.scan_qr(verify_code="4821")
        await scan_and_confirm(fake_ilink, screen, box)

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        result = await login(client, on_qrcode=screen.show, ask_verify_code=phone)
    assert result.account is not None
    assert result.account.token == box[0].token
    assert phone.asked == [False, True, True]
    assert [qr.refresh_number for qr in screen.codes] == [1, 2]
    assert screen.codes[0] != screen.codes[1]


async def test_verify_code_blocked_on_every_qr(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, phone = Screen(), Phone("0000")

    async def user() -> None:
        for _ in range(3):
            await screen.next()
            fake_ilink.scan_qr(verify_code="4821")

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        with pytest.raises(VerifyCodeBlocked):
            await login(client, on_qrcode=screen.show, ask_verify_code=phone)
    assert phone.asked == [False, True, True] * 3
    assert len(screen.codes) == 3


async def test_verify_code_needed_without_callback(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    def on_qrcode(qr: QrCode) -> None:
        fake_ilink.scan_qr(verify_code="4821")

    async with qr_client(fake_ilink) as client:
        with pytest.raises(QrLoginError, match="no ask_verify_code"):
            await login(client, on_qrcode=on_qrcode)


@pytest.mark.parametrize("answer", [None, "", "   "])
async def test_verify_code_cancelled(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, answer: str | None
) -> None:
    def on_qrcode(qr: QrCode) -> None:
        fake_ilink.scan_qr(verify_code="4821")

    async with qr_client(fake_ilink) as client:
        with pytest.raises(QrLoginCancelled):
            await login(client, on_qrcode=on_qrcode, ask_verify_code=lambda wrong: answer)


async def test_expired_refreshes(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box, statuses = Screen(), list["FakeAccount"](), list[str]()

    async def user() -> None:
        await screen.next()
        await trio.sleep(10)
        fake_ilink.scan_qr()
        await trio.sleep(1)
        fake_ilink.expire_qr()
        await scan_and_confirm(fake_ilink, screen, box)

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        result = await login(client, on_qrcode=screen.show, on_status=statuses.append)
    assert result.account is not None
    assert [qr.refresh_number for qr in screen.codes] == [1, 2]
    assert len({qr.qrcode_img_content for qr in screen.codes}) == 2
    assert statuses == ["wait", "scaned", "expired", "wait", "scaned", "confirmed"]
    assert len(fake_ilink.requests_to("get_bot_qrcode")) == 2


async def test_three_expiries(fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock) -> None:
    screen = Screen()
    fake_ilink.qr.ttl = 60
    start = trio.current_time()
    async with qr_client(fake_ilink) as client:
        with pytest.raises(QrLoginExpired):
            await login(client, on_qrcode=screen.show)
    assert [qr.refresh_number for qr in screen.codes] == [1, 2, 3]
    assert trio.current_time() - start == pytest.approx(180, abs=0.01)


async def test_redirect(fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock) -> None:
    screen, box = Screen(), list["FakeAccount"]()

    async def user() -> None:
        await screen.next()
        fake_ilink.scan_qr(redirect_host="idc2.weixin.qq.com")
        await trio.sleep(10)
        fake_ilink.expire_qr()  # the polling host survives a refresh
        await scan_and_confirm(fake_ilink, screen, box)

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        result = await login(client, on_qrcode=screen.show)
    assert result.account is not None
    assert result.account.base_url == fake_ilink.base_url
    hosts = status_hosts(fake_ilink)
    assert hosts[0] == "fake-ilink.invalid"
    assert hosts[1:] == ["idc2.weixin.qq.com"] * (len(hosts) - 1)
    assert len(hosts) > 3
    qr_hosts = [r.headers["host"] for r in fake_ilink.requests_to("get_bot_qrcode")]
    assert qr_hosts == ["fake-ilink.invalid"] * 2


async def test_redirect_disallowed(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    def on_qrcode(qr: QrCode) -> None:
        fake_ilink.scan_qr(redirect_host="evil.example.com")

    async with qr_client(fake_ilink) as client:
        with pytest.raises(QrLoginError, match="not allowed"):
            await login(client, on_qrcode=on_qrcode)
    assert set(status_hosts(fake_ilink)) == {"fake-ilink.invalid"}


async def test_login_binded_redirect(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box = Screen(), list["FakeAccount"]()
    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        owner = fake_ilink.default.owner_id  # the owner of the bot behind the local token
        nursery.start_soon(scan_and_confirm, fake_ilink, screen, box, None, owner)
        result = await login(client, on_qrcode=screen.show, local_tokens=[fake_ilink.token])
    assert result == LoginResult(None, already_bound=True)
    assert box == [fake_ilink.default]
    assert fake_ilink.requests_to("get_bot_qrcode")[0].body == {"local_token_list": 1}


async def test_deadline(fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock) -> None:
    screen = Screen()
    start = trio.current_time()
    async with qr_client(fake_ilink) as client:
        with pytest.raises(QrLoginTimeout, match="480 s"):
            await login(client, on_qrcode=screen.show)
    assert trio.current_time() - start == pytest.approx(480.0, abs=1e-9)
    assert [qr.refresh_number for qr in screen.codes] == [1, 2]  # the first expired at 300 s


@pytest.mark.parametrize("deadline", [0.0, -1.0, math.nan])
async def test_bad_deadline(fake_ilink: FakeILinkServer, deadline: float) -> None:
    async with qr_client(fake_ilink) as client:
        with pytest.raises(ValueError, match="deadline"):
            await login(client, on_qrcode=print, deadline=deadline)


@pytest.mark.parametrize("fault", [Fault.http_status(502), Fault.reset(), Fault.html()])
async def test_transient_poll_failures_tolerated(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, fault: Fault
) -> None:
    screen, box = Screen(), list["FakeAccount"]()
    fake_ilink.inject_fault("get_qrcode_status", fault, times=2)
    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(scan_and_confirm, fake_ilink, screen, box)
        result = await login(client, on_qrcode=screen.show)
    assert result.account is not None
    assert result.account.token == box[0].token


async def test_poll_failures_capped(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("get_qrcode_status", Fault.http_status(503), times=math.inf)
    start = trio.current_time()
    async with qr_client(fake_ilink) as client:
        with pytest.raises(ApiError) as info:
            await login(client, on_qrcode=print)
    assert info.value.status_code == 503
    assert len(fake_ilink.requests_to("get_qrcode_status")) == 10
    assert trio.current_time() - start == pytest.approx(1 + 2 + 4 + 5 * 6)


async def test_transport_failures_capped(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("get_qrcode_status", Fault.reset(), times=math.inf)
    async with qr_client(fake_ilink) as client:
        with pytest.raises(TransportError):
            await login(client, on_qrcode=print)


@pytest.mark.parametrize(
    "fault", [Fault.http_status(400), Fault.api_error(ret=-1, errmsg="unknown qrcode")]
)
async def test_other_poll_errors_raise_at_once(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, fault: Fault
) -> None:
    fake_ilink.inject_fault("get_qrcode_status", fault)
    async with qr_client(fake_ilink) as client:
        with pytest.raises(ApiError):
            await login(client, on_qrcode=print)
    assert len(fake_ilink.requests_to("get_qrcode_status")) == 1


async def test_qrcode_fetch_error_raises(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.inject_fault("get_bot_qrcode", Fault.http_status(502))
    async with qr_client(fake_ilink) as client:
        with pytest.raises(ApiError):
            await login(client, on_qrcode=print)


async def test_hanging_poll_counts_as_wait(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box = Screen(), list["FakeAccount"]()
    fake_ilink.inject_fault("get_qrcode_status", Fault.hang())
    start = trio.current_time()

    async def user() -> None:
        await trio.sleep(45)
        await scan_and_confirm(fake_ilink, screen, box)

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        result = await login(client, on_qrcode=screen.show)
    assert result.account is not None
    second = fake_ilink.requests_to("get_qrcode_status")[1]
    assert second.at - start == pytest.approx(40 + 1)


async def test_cancelled_login_leaves_client_usable(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    screen, box = Screen(), list["FakeAccount"]()
    async with qr_client(fake_ilink) as client:
        with trio.move_on_after(20):
            await login(client, on_qrcode=print)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scan_and_confirm, fake_ilink, screen, box)
            result = await login(client, on_qrcode=screen.show)
    assert result.account is not None
    assert result.account.token == box[0].token


async def test_no_secrets_in_logs(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    screen, box, phone = Screen(), list["FakeAccount"](), Phone("0000", "4821")
    fake_ilink.inject_fault("get_qrcode_status", Fault.http_status(502))

    async def user() -> None:
        await screen.next()
        fake_ilink.expire_qr()
        await screen.next()
        fake_ilink.scan_qr(redirect_host="idc2.weixin.qq.com")
        await trio.sleep(10)
        fake_ilink.scan_qr(verify_code="4821")
        await trio.sleep(10)
        box.append(fake_ilink.confirm_qr())

    async with qr_client(fake_ilink) as client, trio.open_nursery() as nursery:
        nursery.start_soon(user)
        result = await login(client, on_qrcode=screen.show, ask_verify_code=phone)
    assert result.account is not None
    text = caplog.text
    assert "showing QR code 2/3" in text
    assert "polling moved to https://idc2.weixin.qq.com" in text
    assert phone.asked == [False, True]
    for secret in (result.account.token, *fake_ilink.qr.sessions, "4821", "0000"):
        assert secret not in text


async def test_fake_auto_confirm(
    fake_ilink: FakeILinkServer, autojump_clock: trio.abc.Clock
) -> None:
    fake_ilink.qr.auto_confirm = True
    statuses: list[str] = []
    async with qr_client(fake_ilink) as client:
        result = await login(client, on_qrcode=print, on_status=statuses.append)
    assert result.account is not None
    assert statuses == ["scaned", "confirmed"]
