"""Hand-made zip packages for the hostile-input tests: members whose deflate stream is built
without inflating it first (a 1 GiB bomb in a few milliseconds), declared sizes that lie,
missing or damaged members."""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Member:
    """One zip member: its name, its compressed bytes (raw deflate, or stored), the CRC-32 and
    size of its content as they are declared."""

    name: str
    data: bytes
    crc: int
    size: int
    method: int = zipfile.ZIP_DEFLATED


def deflated(name: str, content: bytes) -> Member:
    """A member holding ``content``, deflated."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return Member(name, c.compress(content) + c.flush(), zlib.crc32(content), len(content))


def bomb(name: str, head: bytes, filler: bytes, mib: int, tail: bytes) -> Member:
    """A member inflating to ``head``, then ``mib`` MiB of ``filler`` repeated, then ``tail``.

    After a full flush the compressor starts afresh, so each MiB of filler
    deflates to the same bytes: the stream is built by repeating them.
    """
    unit = (filler * ((1 << 20) // len(filler) + 1))[:1 << 20]
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    once = c.compress(unit) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(unit) + c.flush(zlib.Z_FULL_FLUSH)
    assert once == again
    end = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(tail, crc)
    return Member(name, start + once * mib + end, crc, len(head) + (mib << 20) + len(tail))


def members_of(path: Path) -> list[Member]:
    """The members of a zip file, deflated again (their content unchanged)."""
    with zipfile.ZipFile(path) as z:
        return [deflated(i.filename, z.read(i)) for i in z.infolist()]


def write_zip(path: Path, members: list[Member]) -> Path:
    """Write ``members`` as a zip file at ``path`` (with their declared CRCs and sizes)."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, m.method, 0, 0x21,
                           m.crc, len(m.data), m.size, len(name), 0) + name + m.data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, m.method, 0, 0x21,
                               m.crc, len(m.data), m.size, len(name), 0, 0, 0, 0, 0,
                               offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def replaced(path: Path, dst: Path, changes: dict[str, bytes | Member | None]) -> Path:
    """A copy of the zip ``path`` at ``dst`` with members replaced (bytes: new content, a
    Member as it is) or left out (None)."""
    out = []
    for m in members_of(path):
        if m.name not in changes:
            out.append(m)
        elif isinstance(changes[m.name], Member):
            out.append(changes[m.name])
        elif changes[m.name] is not None:
            out.append(deflated(m.name, changes[m.name]))
    names = {m.name for m in out}
    out += [v if isinstance(v, Member) else deflated(k, v) for k, v in changes.items()
            if k not in names and v is not None and k not in {m.name for m in members_of(path)}]
    return write_zip(dst, out)


def content(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)
