"""The playground in a real browser: headless Chromium driven by playwright (sync API).

One playground (with the echo bot) and one browser per module; each test opens its own
page and uses its own users, so the tests do not see each other's conversations. In CI
a missing Chromium or playwright fails these tests; elsewhere they skip with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import pytest

from tests.playground._process import ECHO_BOT, playground_process
from tests.playground.test_chats import PNG
from weixin_trio._playground.faults import PRESETS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
#: Seconds any single expectation may take.
WAIT_MS = 10_000


def chromium_path() -> str | None:
    """The first executable of ``$WEIXIN_TRIO_CHROMIUM``, ``chromium`` on ``PATH`` and
    ``/usr/bin/chromium`` (``.ci/run`` installs the distribution's package)."""
    candidates = (os.environ.get("WEIXIN_TRIO_CHROMIUM"), shutil.which("chromium"))
    for path in (*candidates, "/usr/bin/chromium"):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if chromium_path() is None:
        return "chromium is not installed (e.g. apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def playground() -> Iterator[dict[str, Any]]:
    with playground_process(ECHO_BOT) as info:
        yield info


@pytest.fixture
def page(browser: Browser, playground: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    opened.goto(playground["url"])
    yield opened
    context.close()
    for name in PRESETS:  # a failed fault test must not break the next tests
        _post(playground["url"] + "api/faults", {"name": name, "on": False})


def _post(url: str, body: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json", "X-Playground": "1"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10):
        pass


def expect(value: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    pw_expect.set_options(timeout=WAIT_MS)
    return pw_expect(value)


def add_user(page: Page, name: str) -> None:
    page.get_by_label("New user name").fill(name)
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def say(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def conversation(page: Page) -> Any:
    return page.get_by_role("log", name="Conversation")


def test_type_a_message_and_see_the_echo(page: Page) -> None:
    add_user(page, "Tina")
    say(page, "hello there")
    expect(conversation(page)).to_contain_text("echo: hello there")
    expect(page.get_by_label("Tool calls")).to_contain_text("echo: completed")
    expect(page.get_by_label("Send window")).to_contain_text("window open")


def test_upload_an_image_and_see_it_come_back(page: Page) -> None:
    add_user(page, "Ivan")
    from playwright.sync_api import FilePayload

    image = FilePayload(name="dot.png", mimeType="image/png", buffer=PNG)
    page.get_by_label("Send image").set_input_files(files=[image])
    back = page.get_by_role("img", name="image from the bot")
    expect(back).to_be_visible()
    assert back.evaluate("img => img.complete && img.naturalWidth") == 1


def test_turn_a_fault_on_and_see_the_bot_recover(page: Page) -> None:
    add_user(page, "Fay")
    fault = page.get_by_label("HTTP 500 on every poll and send")
    fault.check()
    expect(page.get_by_role("log", name="Fault log")).to_contain_text("getupdates: status")
    say(page, "are you there?")
    expect(conversation(page)).not_to_contain_text("echo:", timeout=1000)
    fault.uncheck()
    expect(conversation(page)).to_contain_text("echo: are you there?")


def test_switch_users_and_the_conversations_stay_apart(page: Page) -> None:
    add_user(page, "Erin")
    say(page, "for erin")
    expect(conversation(page)).to_contain_text("echo: for erin")
    add_user(page, "Frank")
    expect(conversation(page)).not_to_contain_text("erin")
    say(page, "for frank")
    expect(conversation(page)).to_contain_text("echo: for frank")
    page.get_by_role("button", name="Chat with Erin").click()
    expect(conversation(page)).to_contain_text("echo: for erin")
    expect(conversation(page)).not_to_contain_text("frank")


def test_a_group_chat_gets_its_own_replies(page: Page) -> None:
    page.get_by_label("New group name").fill("Crew")
    page.get_by_role("button", name="Add group").click()
    expect(page.get_by_role("heading", name="Crew")).to_be_visible()
    page.get_by_label("Send as").select_option(label="Bob")
    say(page, "hi crew")
    expect(conversation(page)).to_contain_text("echo: hi crew")
    page.get_by_role("button", name="Chat with Bob").click()
    expect(conversation(page)).not_to_contain_text("crew")


def test_a_file_comes_back_as_a_download_link(page: Page) -> None:
    from playwright.sync_api import FilePayload

    add_user(page, "Nora")
    notes = FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"buy tea\n")
    page.get_by_label("Send file").set_input_files(files=[notes])
    links = conversation(page).get_by_role("link", name="file: notes.txt")
    expect(links).to_have_count(2)  # the user's and the bot's
    href = links.last.get_attribute("href")
    assert href is not None
    assert page.request.get(urljoin(page.url, href)).body() == b"buy tea\n"
