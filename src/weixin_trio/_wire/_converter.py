"""The library's own cattrs converters (never ``cattrs.global_converter``).

``make_converter()`` gives the lenient converter used for everything the server sends:

- unknown keys are ignored (the server adds fields over time);
- unknown enum values stay plain ``int`` (`WireIntEnum` unions);
- scalars are checked, with the reference's leniency where it matters: a number or
  boolean where text is expected becomes its JSON text (``123`` → ``"123"``, ``false``
  → ``"false"``), and decimal strings are accepted for integers; anything else, such as
  an object where text is expected, is an error;
- enum codes (an item's ``type``, ``message_type``, ``message_state``,
  ``encode_type``) must be numbers: a string such as ``"1"`` is an error, so the
  message is set aside as malformed rather than read as the number (the reference's
  ``===`` comparisons treat ``"1"`` as no known type);
- ``MessageItem`` keeps unknown payload keys in ``extra``.

``make_converter(strict=True)`` is what the fake server uses to validate what clients
send: exact JSON types, no unknown keys, so a mistake in our own request building fails
a test instead of passing silently.

On output both omit ``None`` (the wire never carries ``null``) and write ``extra`` back.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._enums import WireIntEnum, open_enum
from ._types import MessageItem

__all__ = ["dumps", "make_converter", "structure", "unstructure"]

T = TypeVar("T")
# ASCII digits only: str.isdigit() also accepts "²", which int() rejects.
_DECIMAL = re.compile(r"-?[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


_ENUM_OF_UNION: dict[Any, type[WireIntEnum] | None] = {}


def _enum_of_union(tp: Any) -> type[WireIntEnum] | None:
    """The WireIntEnum in ``E | int`` or ``E | int | None``, else ``None`` (memoized).

    It runs for every open-enum field structured (three per inbound message), so the
    answer per annotation is kept; annotations are few and live as long as the types.
    """
    try:
        return _ENUM_OF_UNION[tp]
    except KeyError:
        found = _ENUM_OF_UNION[tp] = _find_enum_of_union(tp)
        return found
    except TypeError:  # an unhashable annotation: not cached
        return _find_enum_of_union(tp)


def _find_enum_of_union(tp: Any) -> type[WireIntEnum] | None:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) != 2 or int not in args:
        return None
    other = args[0] if args[1] is int else args[1]
    if isinstance(other, type) and issubclass(other, WireIntEnum):
        return other
    return None


def _is_optional_scalar(tp: Any, scalar: type) -> bool:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(tp)
    return len(args) == 2 and type(None) in args and scalar in args


def _js_text(value: object) -> str:
    """``String(value)`` of JavaScript for JSON scalars (what the reference does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value) if isinstance(value, float) else str(value)


def _make_scalar_hooks(strict: bool) -> dict[type, Callable[[Any, Any], Any]]:
    def structure_str(value: Any, _: Any) -> str:
        if isinstance(value, str):
            return value
        if not strict and isinstance(value, bool | int | float):
            return _js_text(value)
        raise TypeError(f"expected a string, got {type(value).__name__}")

    def structure_int(value: Any, _: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not strict:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
                return int(value.strip())
        raise TypeError(f"expected an integer, got {type(value).__name__}")

    def structure_bool(value: Any, _: Any) -> bool:
        if isinstance(value, bool):
            return value
        if not strict and isinstance(value, int):
            return bool(value)
        raise TypeError(f"expected a boolean, got {type(value).__name__}")

    return {str: structure_str, int: structure_int, bool: structure_bool}


def _configure(converter: cattrs.Converter, *, strict: bool) -> None:
    scalar_hooks = _make_scalar_hooks(strict)
    for scalar, hook in scalar_hooks.items():
        converter.register_structure_hook(scalar, hook)
        converter.register_structure_hook_func(
            lambda tp, s=scalar: _is_optional_scalar(tp, s),  # type: ignore[misc]
            lambda value, tp, h=hook: None if value is None else h(value, tp),  # type: ignore[misc]
        )

    def structure_open_enum(value: Any, tp: Any) -> Any:
        if value is None:
            return None
        enum_cls = _enum_of_union(tp)
        assert enum_cls is not None
        if isinstance(value, str):
            # The reference compares codes with ===: "1" is no known type there, and
            # reading it as 1 here would act on something the reference ignores.
            raise TypeError("expected an integer code, got a string")
        return open_enum(enum_cls, scalar_hooks[int](value, int))

    converter.register_structure_hook_func(
        lambda tp: _enum_of_union(tp) is not None, structure_open_enum
    )
    # A bare WireIntEnum annotation (singledispatch on the shared base) stays strict.
    converter.register_structure_hook(
        WireIntEnum, lambda value, tp: tp(scalar_hooks[int](value, int))
    )
    converter.register_unstructure_hook(WireIntEnum, int)

    def tuple_hook(value: Any, tp: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected an array, got {type(value).__name__}")
        (item_type, _) = typing.get_args(tp)
        return tuple(converter.structure(v, item_type) for v in value)

    def is_homogeneous_tuple(tp: Any) -> bool:
        origin: Any = typing.get_origin(tp)
        args = typing.get_args(tp)
        return origin is tuple and len(args) == 2 and args[1] is ...

    converter.register_structure_hook_func(is_homogeneous_tuple, tuple_hook)

    def attrs_structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        overrides: dict[str, Any] = {
            a.name: override(omit=True)
            for a in attrs.fields(cls)
            if a.name in ("extra", "malformed", "raw_msgs")
        }
        inner = make_dict_structure_fn(
            cls, converter, _cattrs_forbid_extra_keys=strict and cls is not MessageItem, **overrides
        )
        known = {a.name for a in attrs.fields(cls)}

        def hook(value: Any, tp: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            obj = inner(value, tp)
            if cls is MessageItem:
                extra = {k: v for k, v in value.items() if k not in known}
                if extra:
                    obj = attrs.evolve(obj, extra=extra)
            return obj

        return hook

    def attrs_unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        overrides: dict[str, Any] = {}
        for a in attrs.fields(cls):
            if a.name in ("extra", "malformed", "raw_msgs"):
                overrides[a.name] = override(omit=True)
            elif a.default is not None:
                overrides[a.name] = override(omit_if_default=False)
        inner = make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **overrides)
        if cls is not MessageItem:
            return inner

        def unstructure_item(obj: Any) -> Any:
            out = inner(obj)
            for key, val in obj.extra.items():
                out.setdefault(key, val)
            return out

        return unstructure_item

    converter.register_structure_hook_factory(attrs.has, attrs_structure_factory)
    converter.register_unstructure_hook_factory(attrs.has, attrs_unstructure_factory)


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build a converter for the wire types.

    Args:
        strict: Exact JSON types and no unknown keys (used by the fake server to validate
            client requests). The default is the lenient inbound converter.
    """
    converter = cattrs.Converter(detailed_validation=True)
    _configure(converter, strict=strict)
    return converter


_CONVERTER = make_converter()


def structure(obj: Any, cls: type[T]) -> T:
    """Structure ``obj`` (parsed JSON) as ``cls`` with the lenient converter.

    Raises:
        cattrs.BaseValidationError: (or a ``TypeError``/``ValueError`` subclass of it)
            when ``obj`` does not fit; the endpoint layer turns it into ``ProtocolError``.
    """
    return _CONVERTER.structure(obj, cls)


def unstructure(obj: object) -> Any:
    """Unstructure a wire object into JSON-ready data (``None`` fields omitted)."""
    return _CONVERTER.unstructure(obj)


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON as the references produce it (PROTOCOL Appendix C).

    Non-ASCII text is raw UTF-8, as with ``JSON.stringify``. A lone surrogate (which has
    no UTF-8 form, e.g. ``"a\\ud800b"``) is written as a ``\\ud800`` escape, exactly as
    the reference's well-formed ``JSON.stringify`` does, instead of failing the request.
    """
    text = json.dumps(unstructure(obj), ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Surrogates can only be inside JSON strings (the syntax is ASCII), where an
        # escape is equivalent; each one is escaped on its own, like a lone surrogate.
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()
