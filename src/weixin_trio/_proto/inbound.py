"""What a bot needs from an inbound message: body text, quote, media (PROTOCOL §3.10).

Sans-IO and total: every function accepts any `WeixinMessage`
the lenient converter can produce (every field optional) and never raises. Items of
unknown types are ignored; a payload that does not match its item's ``type`` (an
``image_item`` on a type-5 item, say) is ignored like the reference does.

Body rule (the reference's ``bodyFromItemList``): items are scanned in order; the first
TEXT item with text, or VOICE item with a non-empty transcript, gives the body. A TEXT
item's ``ref_msg`` (a quote) adds a ``[引用: <title> | <quoted text>]`` line before the
text, built recursively for nested quotes, unless the quoted item is media (then only
the text is kept) or both parts are empty. The quoted parts are not escaped (vector
``in-ref-special-chars``): we keep this format so bodies match the reference; use
`extract_quote` for the structured data.

Deliberate differences from the reference:

- An empty TEXT item does not shadow later content: ``["", "second"]`` gives
  ``"second"`` where the reference gives ``""`` (vector ``in-text-empty-string``). The
  first empty TEXT item is still used (with its quote line, if any) when nothing else
  in the message has text.
- `extract_media` returns every media item in order, not only the first by
  priority; `primary_media` makes the reference's choice among them.
- A media item without ``media`` (the CDN reference) yields no `MediaRef`: there
  is nothing to download and nothing to describe.
- Quotes nested deeper than 32 levels are not rendered (a guard against hostile input;
  the reference recurses without limit).
"""

from __future__ import annotations

import re

import attrs

from .._wire import CDNMedia, ItemType, MessageItem, VoiceEncodeType, WeixinMessage
from .media_kind import MediaKind

__all__ = [
    "MediaRef",
    "Quote",
    "extract_body",
    "extract_media",
    "extract_quote",
    "extract_voice_text",
    "is_downloadable",
    "is_media_item",
    "primary_media",
]

_MAX_QUOTE_DEPTH = 32
_QUOTE_LABEL = "引用"
_MEDIA_TYPES: dict[int, MediaKind] = {
    ItemType.IMAGE: MediaKind.IMAGE,
    ItemType.VIDEO: MediaKind.VIDEO,
    ItemType.FILE: MediaKind.FILE,
    ItemType.VOICE: MediaKind.VOICE,
}
_PRIORITY = (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.FILE, MediaKind.VOICE)
_DECIMAL_RE = re.compile(r"\s*\+?([0-9]+)\s*")


@attrs.frozen
class MediaRef:
    """One media item of a message: where it is on the CDN and what is known about it.

    Attributes:
        kind: IMAGE, VIDEO, FILE or VOICE.
        media: The CDN reference of the media itself.
        aes_key_hex: ``image_item.aeskey`` (hex key, preferred over ``media.aes_key``
            for images, PROTOCOL §6.5); ``None`` for other kinds or when absent.
        size: ``file_item.len`` (plaintext bytes, parsed from its decimal text),
            ``image_item.mid_size`` or ``video_item.video_size``.
        file_name: ``file_item.file_name`` as sent (untrusted: see
            ``weixin_trio.media.safe_filename``).
        thumb: The thumbnail's CDN reference (images and videos).
        thumb_size: Thumbnail size in bytes.
        thumb_width: Thumbnail width in pixels.
        thumb_height: Thumbnail height in pixels.
        playtime_ms: Voice duration in milliseconds.
        encode_type: Voice codec (6 = SILK).
        sample_rate: Voice sample rate in Hz.
        transcript: The server's speech-to-text of a voice item.
        item_index: Index of the item in ``item_list`` (for a quoted media item: the
            index of the TEXT item that quotes it).
        downloadable: ``media`` has an ``encrypt_query_param`` or a ``full_url`` and,
            for VIDEO, FILE and VOICE, an ``aes_key`` (the reference skips those items
            without a key, since their bytes would come back undecrypted; an image
            without a key is stored in the clear and is downloadable).
        item: The raw item.
    """

    kind: MediaKind
    media: CDNMedia
    item_index: int
    downloadable: bool
    aes_key_hex: str | None = attrs.field(default=None, repr=False)
    size: int | None = None
    file_name: str | None = None
    thumb: CDNMedia | None = None
    thumb_size: int | None = None
    thumb_width: int | None = None
    thumb_height: int | None = None
    playtime_ms: int | None = None
    encode_type: VoiceEncodeType | int | None = None
    sample_rate: int | None = None
    transcript: str | None = None
    item: MessageItem | None = attrs.field(default=None, repr=False)


@attrs.frozen
class Quote:
    """The message a TEXT item quotes (its ``ref_msg``, PROTOCOL §3.8).

    Empty strings on the wire are reported as ``None``. The server often leaves both
    ``title`` and the quoted text empty; ``message_id`` is the reliable key.

    Attributes:
        title: ``ref_msg.title``: the server's summary of the quoted message.
        text: The quoted item's own body (text, nested quote lines, or a voice
            transcript), computed like `extract_body`.
        message_id: ``ref_msg.message_item.msg_id``: the quoted message's id as text.
        media: The quoted item when it is media (``item_index`` is the quoting item's).
        item: The raw quoted item.
    """

    title: str | None = None
    text: str | None = None
    message_id: str | None = None
    media: MediaRef | None = None
    item: MessageItem | None = attrs.field(default=None, repr=False)


def is_media_item(item: MessageItem) -> bool:
    """Whether an item is IMAGE, VIDEO, FILE or VOICE (the reference's ``isMediaItem``).

    Args:
        item: Any item.

    Returns:
        ``True`` for item types 2, 3, 4 and 5, whatever the payload holds.
    """
    return item.type in _MEDIA_TYPES


def is_downloadable(media: CDNMedia | None) -> bool:
    """Whether a CDN reference can be fetched: it has ``encrypt_query_param`` or ``full_url``.

    Args:
        media: The CDN reference, if any.

    Returns:
        ``True`` when either field is non-empty.
    """
    if media is None:
        return False
    return bool(media.encrypt_query_param) or bool((media.full_url or "").strip())


# --- body ---------------------------------------------------------------------------


def _render_text_item(item: MessageItem, text: str, depth: int) -> str:
    ref = item.ref_msg
    if ref is None:
        return text
    quoted = ref.message_item
    if quoted is not None and is_media_item(quoted):
        return text
    parts: list[str] = []
    if ref.title:
        parts.append(ref.title)
    if quoted is not None and depth < _MAX_QUOTE_DEPTH:
        quoted_body = _body((quoted,), depth + 1)
        if quoted_body:
            parts.append(quoted_body)
    if not parts:
        return text
    return f"[{_QUOTE_LABEL}: {' | '.join(parts)}]\n{text}"


def _body(items: tuple[MessageItem, ...], depth: int) -> str:
    fallback: tuple[MessageItem, str] | None = None
    for item in items:
        if item.type == ItemType.TEXT:
            text = item.text_item.text if item.text_item is not None else None
            if text:
                return _render_text_item(item, text, depth)
            if text is not None and fallback is None:
                fallback = (item, text)
        elif item.type == ItemType.VOICE and item.voice_item is not None and item.voice_item.text:
            return item.voice_item.text
    if fallback is not None:
        return _render_text_item(fallback[0], fallback[1], depth)
    return ""


def extract_body(msg: WeixinMessage) -> str:
    """The message's body text, per the reference's rule (see the module docstring).

    Args:
        msg: An inbound message.

    Returns:
        The text, possibly with ``[引用: ...]`` quote lines before it, the first voice
        transcript, or ``""`` when the message has no text at all.
    """
    return _body(msg.item_list or (), 0)


def extract_voice_text(msg: WeixinMessage) -> str | None:
    """The first non-empty voice transcript of the message.

    Args:
        msg: An inbound message.

    Returns:
        The transcript, or ``None`` when no VOICE item has one.
    """
    for item in msg.item_list or ():
        if item.type == ItemType.VOICE and item.voice_item is not None and item.voice_item.text:
            return item.voice_item.text
    return None


# --- media --------------------------------------------------------------------------


def _keyed(media: CDNMedia) -> bool:
    """Downloadable and encrypted with a key (VIDEO, FILE and VOICE need one)."""
    return is_downloadable(media) and bool((media.aes_key or "").strip())


def _lenient_int(value: str | None) -> int | None:
    if value is None:
        return None
    m = _DECIMAL_RE.fullmatch(value)
    return int(m.group(1)) if m else None


def _media_ref(item: MessageItem, index: int) -> MediaRef | None:
    kind = _MEDIA_TYPES.get(item.type) if item.type is not None else None
    if kind is MediaKind.IMAGE and item.image_item is not None:
        image = item.image_item
        if image.media is None:
            return None
        return MediaRef(
            kind=kind,
            media=image.media,
            item_index=index,
            downloadable=is_downloadable(image.media),
            aes_key_hex=image.aeskey or None,
            size=image.mid_size,
            thumb=image.thumb_media,
            thumb_size=image.thumb_size,
            thumb_width=image.thumb_width,
            thumb_height=image.thumb_height,
            item=item,
        )
    if kind is MediaKind.VIDEO and item.video_item is not None:
        video = item.video_item
        if video.media is None:
            return None
        return MediaRef(
            kind=kind,
            media=video.media,
            item_index=index,
            downloadable=_keyed(video.media),
            size=video.video_size,
            thumb=video.thumb_media,
            thumb_size=video.thumb_size,
            thumb_width=video.thumb_width,
            thumb_height=video.thumb_height,
            item=item,
        )
    if kind is MediaKind.FILE and item.file_item is not None:
        file = item.file_item
        if file.media is None:
            return None
        return MediaRef(
            kind=kind,
            media=file.media,
            item_index=index,
            downloadable=_keyed(file.media),
            size=_lenient_int(file.len),
            file_name=file.file_name,
            item=item,
        )
    if kind is MediaKind.VOICE and item.voice_item is not None:
        voice = item.voice_item
        if voice.media is None:
            return None
        return MediaRef(
            kind=kind,
            media=voice.media,
            item_index=index,
            downloadable=_keyed(voice.media),
            playtime_ms=voice.playtime,
            encode_type=voice.encode_type,
            sample_rate=voice.sample_rate,
            transcript=voice.text or None,
            item=item,
        )
    return None


def extract_media(msg: WeixinMessage) -> tuple[MediaRef, ...]:
    """Every media item of the message, in order (quoted media is not included).

    Args:
        msg: An inbound message.

    Returns:
        One [`MediaRef`][weixin_trio.MediaRef] per IMAGE, VIDEO, FILE or VOICE item whose payload
        carries a ``media`` object; other items are skipped.
    """
    refs = (_media_ref(item, i) for i, item in enumerate(msg.item_list or ()))
    return tuple(ref for ref in refs if ref is not None)


def primary_media(refs: tuple[MediaRef, ...], quote: Quote | None = None) -> MediaRef | None:
    """The attachment the reference would download: one item, by kind priority.

    Priority IMAGE > VIDEO > FILE > VOICE (a voice item only when it has no transcript);
    within a kind, the first. Only downloadable items count (see
    `MediaRef.downloadable`). When there is none, the quoted media of ``quote`` is
    used on the same terms (downloadable, and a voice only without a transcript), as the
    reference falls back to the media item a TEXT item quotes.

    Args:
        refs: The result of `extract_media`.
        quote: The result of `extract_quote`, for the fallback.

    Returns:
        The chosen item, or ``None``.
    """
    for kind in _PRIORITY:
        for ref in refs:
            if ref.kind is kind and _wanted(ref):
                return ref
    if quote is not None and quote.media is not None and _wanted(quote.media):
        return quote.media
    return None


def _wanted(ref: MediaRef) -> bool:
    """Whether the reference would download the item: a voice with a transcript is not."""
    return ref.downloadable and not (ref.kind is MediaKind.VOICE and ref.transcript)


def extract_quote(msg: WeixinMessage) -> Quote | None:
    """The quote carried by the first TEXT item that has a ``ref_msg``.

    Args:
        msg: An inbound message.

    Returns:
        The quote, or ``None`` when no TEXT item quotes anything (or the ``ref_msg`` is
        empty: no title and no quoted item).
    """
    for index, item in enumerate(msg.item_list or ()):
        if item.type != ItemType.TEXT or item.ref_msg is None:
            continue
        ref = item.ref_msg
        quoted = ref.message_item
        if not ref.title and quoted is None:
            return None
        if quoted is None:
            return Quote(title=ref.title or None)
        return Quote(
            title=ref.title or None,
            text=_body((quoted,), 1) or None,
            message_id=quoted.msg_id or None,
            media=_media_ref(quoted, index),
            item=quoted,
        )
    return None
