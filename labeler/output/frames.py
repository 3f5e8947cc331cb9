"""Framed files: a header that makes any truncation or corruption of a file detectable.

A checkpoint or a state segment is written whole, once, and read whole. Its
bytes are a 18-byte header, then the payload::

    magic (4 bytes) | format version (2, big-endian) | payload length (8) | CRC-32C (4)

Reading checks all four before the payload is decoded: the magic (a
checkpoint is not read as a segment, nor a stray file as either), the
version, that the file holds exactly the announced length (an empty file,
a cut at any byte, or bytes appended are errors), and the checksum of the
payload. CRC-32C (Castagnoli, the checksum of Kafka's record batches; the
``crc32c`` package, a dependency of kafka-python[crc32c]) catches every
changed byte and every burst of errors up to 32 bits, and anything else but
for one chance in 2**32. One algorithm always, so a file written on one
machine reads on any other.

>>> data = frame(SEGMENT, b"payload")
>>> unframe(SEGMENT, data) == b"payload"
True
>>> unframe(SEGMENT, data[:-1])
Traceback (most recent call last):
...
labeler.output.frames.FrameError: 24 bytes where the header announces 25 (cut short)
"""

from __future__ import annotations

import struct

from crc32c import crc32c

FORMAT_VERSION = 3  # 3: framed files, the epoch log; 2: unframed msgpack
CHECKPOINT = b"LLCK"
SEGMENT = b"LLSG"
_HEADER = struct.Struct(">4sHQI")


class FrameError(ValueError):
    """The bytes are not one intact frame; the message says what is wrong."""


def frame(magic: bytes, payload: bytes) -> bytes:
    """``payload`` behind its header, ready to be written."""
    return _HEADER.pack(magic, FORMAT_VERSION, len(payload), crc32c(payload)) + payload


def unframe(magic: bytes, data: bytes) -> memoryview:
    """The payload of ``data`` (a view, not a copy); ``FrameError`` unless ``data`` is
    exactly one intact frame of kind ``magic``."""
    if len(data) < _HEADER.size:
        raise FrameError(f"{len(data)} bytes, shorter than the {_HEADER.size}-byte header"
                         + (" (an empty file)" if not data else " (cut short)"))
    found, version, length, checksum = _HEADER.unpack_from(data)
    if found != magic:
        raise FrameError(f"it begins with {found!r}, not {magic!r}: not a file of this kind")
    if version != FORMAT_VERSION:
        raise FrameError(f"format version {version}, this loglabel reads {FORMAT_VERSION}")
    size = _HEADER.size + length
    if len(data) != size:
        raise FrameError(f"{len(data)} bytes where the header announces {size} "
                         + ("(cut short)" if len(data) < size else "(bytes after the end)"))
    payload = memoryview(data)[_HEADER.size:]
    if crc32c(payload) != checksum:
        raise FrameError("its checksum does not match its contents (corrupt)")
    return payload
