"""The sans-IO slash-command parser: forms, mentions, quoting, and hostile input."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given, strategies as st

from weixin_trio._proto.commands import MAX_SHELL_SPLIT, Command, parse_command, split_args

#: Anything a message text can hold, lone surrogates and NULs included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=200)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,15}", fullmatch=True)
spaces = st.sampled_from([" ", "  ", "\t", "\u3000", " \u3000 ", "\n", "\u2005"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ping", Command("ping")),
        ("/PING", Command("ping")),
        ("／ping", Command("ping")),
        ("/Straße", Command("strasse")),
        ("/ping a b", Command("ping", ("a", "b"), "a b")),
        (
            "/say 'hello world' \"x y\" z",
            Command("say", ("hello world", "x y", "z"), "'hello world' \"x y\" z"),
        ),
        ("/say it's", Command("say", ("it's",), "it's")),  # unbalanced: whitespace split
        ("/say a\\", Command("say", ("a\\",), "a\\")),  # a trailing escape, too
        ("@bot /ping x", Command("ping", ("x",), "x", "bot")),
        ("@bot\u2005/ping", Command("ping", mention="bot")),
        ("/ping@bot x", Command("ping", ("x",), "x", "bot")),
        ("@bot /ping@bot", Command("ping", mention="bot")),
        ("  \u3000/ping\u3000a\u3000b \u3000", Command("ping", ("a", "b"), "a\u3000b")),
        ("/toggle-debug", Command("toggle-debug")),
        ("/帮助 一", Command("帮助", ("一",), "一")),
        ("/echo line 1\nline 2", Command("echo", ("line", "1", "line", "2"), "line 1\nline 2")),
    ],
)
def test_commands(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ping",
        "/",
        "／",
        "/ ping",
        "hello /ping",
        "/usr/bin",
        "//ping",
        "@bot",
        "@bot ping",
        "@a /ping@b",  # two different mentions
        "/ping@",
        "@/ping",
    ],
)
def test_not_commands(text: str) -> None:
    assert parse_command(text) is None


@given(any_text)
@example("/\ud800 \udfff '\x00")
@example("@\x00 /\x00@\x00 \x00")
def test_never_raises(text: str) -> None:
    command = parse_command(text)
    if command is not None:
        assert command.name == command.name.casefold()
        assert command.name
        assert command.raw_args == command.raw_args.strip()


def test_huge_input_is_split_on_whitespace_only() -> None:
    text = "/x " + "'a b' " * (MAX_SHELL_SPLIT // 4)
    command = parse_command(text)
    assert command is not None
    assert command.args[:2] == ("'a", "b'")
    assert parse_command("/" + "x" * 1_000_000) == Command("x" * 1_000_000)


@given(names, st.lists(any_text, max_size=6), spaces)
def test_quoted_args_round_trip(name: str, args: list[str], space: str) -> None:
    text = f"/{name}{space}{shlex.join(args)}"
    command = parse_command(text)
    assert command is not None
    assert command.name == name.casefold()
    assert command.args == tuple(args)


@given(names, names, st.lists(any_text, max_size=3))
def test_mentions_are_stripped(name: str, bot: str, args: list[str]) -> None:
    quoted = shlex.join(args)
    before = parse_command(f"@{bot} /{name} {quoted}")
    after = parse_command(f"/{name}@{bot} {quoted}")
    plain = parse_command(f"/{name} {quoted}")
    assert plain is not None
    assert before == after == Command(plain.name, plain.args, plain.raw_args, bot)


@given(st.text(st.sampled_from("ab '\"\\\u3000"), max_size=30))
def test_split_args_never_raises_and_drops_no_word(raw: str) -> None:
    words = split_args(raw)
    assert all(isinstance(w, str) for w in words)
    if "'" not in raw and '"' not in raw and "\\" not in raw:
        assert words == tuple(raw.split())
