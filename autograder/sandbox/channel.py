"""The pipe pair between the trusted parent and the sandboxed child, with deadlines.

Messages are framed by `autograder.protocol` (JSON header + raw array bytes, never pickle).
The child is student-controlled, so everything it sends may be forged: a reply whose header is
not a JSON object, or whose sizes are out of bounds, is a `ProtocolError` like any malformed
message, never an exception elsewhere in the parent.

`Channel` waits on its pipes with `select` (POSIX). `ThreadedChannel` is the same over the
child's stdin and stdout for systems where neither file descriptors can be passed nor pipes
be waited on (Windows): a thread reads replies into a queue, and each write runs in a thread
that is abandoned at its deadline (the sandbox then kills the child, which ends the write).
"""

from __future__ import annotations

import os
import queue
import threading
import time

from autograder import protocol

__all__ = ["Channel", "ThreadedChannel"]


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


def _binary(fd: int) -> None:
    """Windows: no newline translation on a pipe's C-runtime descriptor."""
    try:
        import msvcrt
    except ImportError:
        return
    msvcrt.setmode(fd, os.O_BINARY)


class ThreadedChannel:
    """`Channel`'s interface over the child's stdin (requests) and stdout (replies), with
    threads instead of `select`; the same exceptions."""

    def __init__(self, request_file, reply_file):
        self._request, self._reply = request_file, reply_file
        self.request_fd, self.reply_fd = request_file.fileno(), reply_file.fileno()
        for fd in (self.request_fd, self.reply_fd):
            _binary(fd)
        self._replies: queue.Queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self._broken = False
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="sandbox-replies")
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = protocol.read_message(self.reply_fd)
            except protocol.ProtocolError as exc:
                self._replies.put(exc)
                return
            except (OSError, ValueError) as exc:
                self._replies.put(protocol.ChannelClosed(str(exc)))
                return
            self._replies.put(message)

    def send(self, header: dict, buffers=(), deadline: float | None = None) -> None:
        if self._broken:
            raise protocol.ChannelClosed("an earlier write did not finish")
        data = protocol.pack_message(header, buffers)
        failed: list[OSError] = []

        def write() -> None:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.request_fd, view):]
            except OSError as exc:
                failed.append(exc)

        self._writer = threading.Thread(target=write, daemon=True, name="sandbox-request")
        self._writer.start()
        self._writer.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._writer.is_alive():
            self._broken = True
            raise protocol.ChannelTimeout("timed out writing to the sandbox")
        if failed:
            self._broken = True
            raise protocol.ChannelClosed(str(failed[0]))

    def receive(self, deadline: float) -> tuple[dict, list]:
        try:
            item = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise protocol.ChannelTimeout("timed out waiting for the sandbox") from None
        if isinstance(item, Exception):
            self._replies.put(item)             # the channel stays closed or broken
            raise item
        header, buffers = item
        if not isinstance(header, dict):
            raise protocol.ProtocolError("the reply is not a JSON object")
        return header, buffers

    def close(self) -> None:
        """Close both pipes once their threads are done (the child is dead by now); a
        thread still blocked keeps its descriptor, so its number is never reused under it."""
        for thread, stream in ((self._writer, self._request), (self._reader, self._reply)):
            if thread is not None:
                thread.join(timeout=2)
            if thread is None or not thread.is_alive():
                try:
                    stream.close()
                except OSError:
                    pass
