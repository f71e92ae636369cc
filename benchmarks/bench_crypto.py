"""Throughput of the streaming AES-128-ECB objects against raw ``cryptography``.

Encrypts and decrypts 64 MiB through :class:`weixin_trio.crypto.AesEcbEncryptor` and
:class:`~weixin_trio.crypto.AesEcbDecryptor` in 64 KiB chunks, and the same data with
``cryptography``'s ECB and PKCS7 padder/unpadder in one shot, in the same run. Prints MB/s
for each and the ratio streaming/raw; the target is a ratio of at least 0.80.

Run: ``python benchmarks/bench_crypto.py [--size-mib N] [--repeat N] [--check]``.
With ``--check`` the exit status is 1 when a ratio is below the target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from weixin_trio.crypto import AesEcbDecryptor, AesEcbEncryptor

if TYPE_CHECKING:
    from collections.abc import Callable

MIB = 1024 * 1024
CHUNK = 64 * 1024
TARGET = 0.80


def raw_encrypt(data: bytes, key: bytes) -> bytes:
    """One-shot AES-128-ECB + PKCS7 with ``cryptography`` directly."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def raw_decrypt(data: bytes, key: bytes) -> bytes:
    """One-shot AES-128-ECB decryption + PKCS7 unpadding with ``cryptography`` directly."""
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def stream_encrypt(data: bytes, key: bytes) -> list[bytes]:
    """Encrypt through :class:`AesEcbEncryptor` in 64 KiB chunks."""
    view = memoryview(data)
    encryptor = AesEcbEncryptor(key)
    out = [encryptor.update(view[i : i + CHUNK]) for i in range(0, len(view), CHUNK)]
    out.append(encryptor.finalize())
    return out


def stream_decrypt(data: bytes, key: bytes) -> list[bytes]:
    """Decrypt through :class:`AesEcbDecryptor` in 64 KiB chunks."""
    view = memoryview(data)
    decryptor = AesEcbDecryptor(key)
    out = [decryptor.update(view[i : i + CHUNK]) for i in range(0, len(view), CHUNK)]
    out.append(decryptor.finalize())
    return out


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` timed calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 below the target ratio")
    args = parser.parse_args()

    key = os.urandom(16)
    data = os.urandom(args.size_mib * MIB)
    ciphertext = raw_encrypt(data, key)
    if b"".join(stream_encrypt(data, key)) != ciphertext:
        sys.exit("streaming encryption differs from one-shot")
    if b"".join(stream_decrypt(ciphertext, key)) != data:
        sys.exit("streaming decryption differs from one-shot")

    megabytes = len(data) / 1e6
    rows = [
        (
            "encrypt",
            best_seconds(lambda: raw_encrypt(data, key), args.repeat),
            best_seconds(lambda: stream_encrypt(data, key), args.repeat),
        ),
        (
            "decrypt",
            best_seconds(lambda: raw_decrypt(ciphertext, key), args.repeat),
            best_seconds(lambda: stream_decrypt(ciphertext, key), args.repeat),
        ),
    ]
    print(f"{args.size_mib} MiB, {CHUNK // 1024} KiB chunks, best of {args.repeat}")
    below = False
    for name, raw_s, stream_s in rows:
        ratio = raw_s / stream_s
        below = below or ratio < TARGET
        print(
            f"{name}: raw one-shot {megabytes / raw_s:8.1f} MB/s  "
            f"streaming {megabytes / stream_s:8.1f} MB/s  "
            f"ratio {ratio:.2f} (target >= {TARGET:.2f})"
        )
    if below and args.check:
        sys.exit(1)


if __name__ == "__main__":
    main()
