"""Messages between the stage and its worker processes: pickled, length-prefixed, on pipes."""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any, BinaryIO

_HEADER = struct.Struct("!Q")


def send(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def receive(stream: BinaryIO) -> Any | None:
    """The next message, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


class FrameReader:
    """Whole messages from a non-blocking pipe, as its bytes arrive (for `select`)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = bytearray()
        self.closed = False

    def read(self) -> list[Any]:
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            self.closed = True
        self.buffer += chunk
        messages = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            end = _HEADER.size + size
            if len(self.buffer) < end:
                break
            messages.append(pickle.loads(bytes(self.buffer[_HEADER.size : end])))
            del self.buffer[:end]
        return messages
