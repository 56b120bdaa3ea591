"""The declared sizes of a chunked request body, read from its raw bytes (httptools parses chunked framing but never
reports a chunk's declared size, so a chunk header declaring 2^52 bytes would otherwise be known only as its bytes
arrive: 408 at the body deadline instead of 413 at once).

`ChunkSizes` is fed the body's bytes from its first byte on and looks only at the framing: chunk-size lines (hex
digits, optional extensions up to the line feed), then skips each chunk's data and its CRLF, and stops at the last
chunk (size 0: the trailers that follow are the parser's business). It validates nothing: the caller checks that it
found as many chunk headers as the parser did (`chunks`), and otherwise stops trusting it.
"""

from __future__ import annotations

from typing import Final

_HEX: Final = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_SIZE, _EXTENSION, _DATA, _DONE, _BROKEN = range(5)


class ChunkSizes:
    """Running totals of a chunked body's framing: `declared` = the sizes of every chunk header read so far."""

    __slots__ = ("chunks", "declared", "_left", "_size", "_state")

    def __init__(self) -> None:
        self.chunks = 0  # complete chunk-size lines read, the last chunk's included
        self.declared = 0
        self._state = _SIZE
        self._size = -1  # the hex digits read so far of the chunk-size line in progress (-1: none yet)
        self._left = 0  # bytes of chunk data plus its CRLF still to skip

    @property
    def broken(self) -> bool:
        return self._state == _BROKEN

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state == _DATA:
                step = min(self._left, n - i)
                i += step
                self._left -= step
                if not self._left:
                    self._state = _SIZE
            elif state == _SIZE:
                digit = _HEX.get(data[i])
                if digit is not None:
                    self._size = digit if self._size < 0 else self._size * 16 + digit
                    i += 1
                elif self._size < 0:
                    self._state = _BROKEN  # a chunk-size line must start with a hex digit
                    return
                else:
                    self._state = _EXTENSION
            elif state == _EXTENSION:
                end = data.find(b"\n", i)
                if end < 0:
                    return
                i = end + 1
                self.chunks += 1
                self.declared += self._size
                if self._size == 0:
                    self._state = _DONE
                    return
                self._state, self._left, self._size = _DATA, self._size + 2, -1
            else:
                return
