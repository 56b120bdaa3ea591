"""Read a growing log file a line at a time, paying only for what was appended since the last read.

The local runtime follows its processes' logs (the notifier relay's alerts, the tasks' event lines for the live view)
while they are written; re-reading a whole file every second would cost more as a sale goes on.
"""

from __future__ import annotations

from pathlib import Path


class LogTail:
    """The complete lines appended to `path` since the previous `lines()` call (a line still being written waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:  # the file was replaced (a fresh log): start again from its beginning
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with open(self.path, "rb") as log:
            log.seek(self._offset)
            data = log.read(size - self._offset)
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in complete]
