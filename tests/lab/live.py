"""The live lab's server on a free port of 127.0.0.1, in a thread, for the tests."""

import threading
import time
from contextlib import contextmanager

from lossopt.lab.live.server import make_server


@contextmanager
def running_server():
    """Yield the server's base URL (http://127.0.0.1:<port>) and its bound address."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the live lab's server did not start"
        assert thread.is_alive(), "the live lab's server stopped at start"
        time.sleep(0.05)
    (socket,) = [s for srv in server.servers for s in srv.sockets]
    host, port = socket.getsockname()[:2]
    try:
        yield f"http://{host}:{port}", (host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
