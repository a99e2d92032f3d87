"""The pipe pair between the trusted parent and the sandboxed child, with deadlines.

Messages are framed by `autograder.protocol` (JSON header + raw array bytes, never pickle).
The child is student-controlled, so everything it sends may be forged: a reply whose header is
not a JSON object, or whose sizes are out of bounds, is a `ProtocolError` like any malformed
message, never an exception elsewhere in the parent.
"""

from __future__ import annotations

import os

from autograder import protocol

__all__ = ["Channel"]


class Channel:
    """Send requests to and receive replies from one child, each before a deadline.

    Raises `protocol.ChannelTimeout` (deadline passed), `protocol.ChannelClosed` (the child
    is gone) or `protocol.ProtocolError` (a malformed or oversized reply).
    """

    def __init__(self, request_fd: int, reply_fd: int):
        self.request_fd, self.reply_fd = request_fd, reply_fd
        os.set_blocking(request_fd, False)

    def send(self, header: dict, buffers=(), deadline: float | None = None) -> None:
        protocol.write_message(self.request_fd, header, buffers, deadline)

    def receive(self, deadline: float) -> tuple[dict, list]:
        header, buffers = protocol.read_message(self.reply_fd, deadline)
        if not isinstance(header, dict):
            raise protocol.ProtocolError("the reply is not a JSON object")
        return header, buffers

    def close(self) -> None:
        for fd in (self.request_fd, self.reply_fd):
            try:
                os.close(fd)
            except OSError:
                pass
