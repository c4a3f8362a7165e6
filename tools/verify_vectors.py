#!/usr/bin/env python3
"""Checks the test vectors of protocol.md with an independent implementation of §2 and §3.

Written from protocol.md alone, on the `cryptography` package (OpenSSL), not on swift-crypto: if the Swift
code and this script agree, the document is implementable as written. Prints 'N passed, N failed'.
"""
import re
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    # RFC 5869: an empty salt means HashLen zero bytes.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


def vectors(text: str):
    for block in re.findall(r"```vector\n(.*?)```", text, re.S):
        fields = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        yield fields


def check(v: dict) -> list:
    problems = []
    device = int(v["device"], 0)
    epoch = int(v.get("epoch", "0"), 0)
    if "master" in v:
        # §3.2: info is the id, then for a key epoch above 0 the epoch as 2 bytes.
        info = device.to_bytes(4, "big") + (epoch.to_bytes(2, "big") if epoch else b"")
        root = hkdf(bytes.fromhex(v["master"]), b"DeviceKit v1 device", info)
    else:
        root = bytes.fromhex(v["key"])
    frame = bytes.fromhex(v["frame"].replace(" ", ""))
    body = bytes.fromhex(v["body"].replace(" ", ""))
    if v["direction"] == "up":
        key = hkdf(root, b"", b"DeviceKit v1 up")
        counter = int(v["counter"], 0)
        # §2.1: the low 3 bits of an up header's first byte are the key epoch mod 8.
        header = bytes([0x10 | epoch % 8]) + len(frame).to_bytes(2, "big") + device.to_bytes(4, "big") + counter.to_bytes(6, "big")
    else:
        key = hkdf(root, int(v["anchor"], 0).to_bytes(6, "big"), b"DeviceKit v1 down")
        counter = int(v["salt"], 0) << 32 | int(v["sequence"], 0)
        header = bytes([0x18]) + len(frame).to_bytes(2, "big") + device.to_bytes(4, "big") + counter.to_bytes(8, "big")
    nonce = header[-12:]  # the last 12 bytes of the header (§3.3)
    if frame[: len(header)] != header:
        problems.append("header differs")
    sealed = header + ChaCha20Poly1305(key).encrypt(nonce, body, header)
    if sealed != frame:
        problems.append("frame differs from an independent seal of the body")
    try:
        opened = ChaCha20Poly1305(key).decrypt(nonce, frame[len(header):], frame[: len(header)])
        if opened != body:
            problems.append("decrypted body differs")
    except Exception:
        problems.append("tag does not verify")
    if len(frame) > 1024:
        problems.append("frame longer than 1024 bytes")
    return problems


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "protocol.md")
    passed = failed = 0
    for v in vectors(path.read_text()):
        problems = check(v)
        if problems:
            failed += 1
            print(f"FAIL {v['name']}: {'; '.join(problems)}")
        else:
            passed += 1
            print(f"ok   {v['name']}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed < 8 else 0


if __name__ == "__main__":
    sys.exit(main())
