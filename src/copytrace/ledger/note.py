"""Signed checkpoints: C2SP signed notes (Ed25519) carrying a C2SP tlog checkpoint.

A checkpoint's text is three lines: the log's origin, the tree size in decimal, the root hash in
standard base64. A signed note is that text, a blank line, then signature lines
``— <key name> <base64(key id || signature)>``; the key id is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || public key)`` and the signature covers the text with its
final newline. A verifier key is shared as ``<name>+<hex key id>+<base64(0x01 || public key)>``.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from copytrace.errors import LedgerError

ED25519 = b"\x01"
DASH = "\u2014 "
_NAME = re.compile(r"[^\s+]+")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def b64decode_strict(text: str) -> bytes:
    """Standard base64 in its one canonical spelling: padding and unused bits must be as the
    encoder writes them, so no two texts decode to the same bytes."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + public).decode()}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """(name, 32-byte public key) of ``name+hexid+base64``; the id must match the key."""
    try:
        name, hex_id, b64 = vkey.strip().split("+", 2)
        raw = b64decode_strict(b64)
    except ValueError:
        raise LedgerError(f"not a verifier key (name+id+key): {vkey[:80]!r}") from None
    if raw[:1] != ED25519 or len(raw) != 33 or key_id(name, raw[1:]).hex() != hex_id:
        raise LedgerError(f"verifier key {name!r}: not an Ed25519 key or its id does not match")
    return name, raw[1:]


class Signer:
    """An Ed25519 key for one library's log; the private key file is 0600 PKCS#8 PEM."""

    def __init__(self, name: str, private) -> None:
        if not _NAME.fullmatch(name):
            raise LedgerError(f"key name {name!r} must be non-empty with no spaces or '+'")
        self.name = name
        self._key = private

    @classmethod
    def load_or_create(cls, path: str | os.PathLike, name: str) -> Signer:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = Path(path)
        if path.exists():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError) as e:
                raise LedgerError(f"{path}: not an unencrypted Ed25519 PEM key: {e}") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise LedgerError(f"{path}: not an Ed25519 key")
            return cls(name, key)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # another process may have created it a moment ago: keep theirs
        except FileExistsError:
            os.unlink(tmp)
            return cls.load_or_create(path, name)
        os.unlink(tmp)
        return cls(name, key)

    @property
    def public(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.public)

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in one newline)."""
        _check_text(text)
        sig = self._key.sign(text.encode())
        blob = base64.b64encode(key_id(self.name, self.public) + sig).decode()
        return f"{text}\n{DASH}{self.name} {blob}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or any(
            ord(c) < 0x20 and c != "\n" for c in text):
        raise LedgerError("note text must end in a newline, with no blank lines or controls")


def open_note(note: str, vkey: str) -> str:
    """The text of ``note`` if the key ``vkey`` signed it; LedgerError otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, public = parse_verifier_key(vkey)
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise LedgerError("not a signed note (no blank line before signatures)")
    text, sigs = note[:cut + 1], note[cut + 2:].splitlines()
    _check_text(text)
    want = key_id(name, public)
    for line in sigs:
        if not line.startswith(DASH):
            raise LedgerError(f"malformed signature line {line[:60]!r}")
        signer, _, blob = line[len(DASH):].partition(" ")
        try:
            raw = b64decode_strict(blob)
        except ValueError:
            raise LedgerError(f"signature of {signer!r} is not base64") from None
        if signer != name or raw[:4] != want:
            continue  # another key's signature (a witness, say): not ours to check
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise LedgerError(f"the signature of {name} does not verify") from None
        return text
    raise LedgerError(f"the note carries no signature by {name}")


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    try:
        origin, size, root = lines[0], int(lines[1]), b64decode_strict(lines[2])
    except (IndexError, ValueError):
        raise LedgerError("not a checkpoint (origin, size, base64 root)") from None
    if not origin or size < 0 or len(root) != 32:
        raise LedgerError("checkpoint fields out of range")
    return Checkpoint(origin, size, root)


def verify_checkpoint(note: str, vkey: str) -> Checkpoint:
    """The checkpoint inside a note signed by ``vkey``; its origin must be the key's name."""
    cp = parse_checkpoint(open_note(note, vkey))
    if cp.origin != parse_verifier_key(vkey)[0]:
        raise LedgerError(f"checkpoint origin {cp.origin!r} is not the key's log")
    return cp
