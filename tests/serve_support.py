"""Running a built server (app.server.make_server) on a free loopback port, in a thread, for a
test; `stop()` ends it and its model host."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class Running:
    def __init__(self, server: Any, uvicorn: Any, thread: threading.Thread, port: int):
        self.server, self.uvicorn, self.thread, self.port = server, uvicorn, thread, port
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=30)
        self.server.worker.stop()


def serve(server: Any) -> Running:
    from app.server.api import uvicorn_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn_server(server, "127.0.0.1", port, "warning")
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:  # uvicorn sets it once it listens; nothing to wait on but the flag
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    return Running(server, uv, thread, port)
