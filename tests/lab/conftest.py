import threading

import pytest


@pytest.fixture(scope="module")
def lab_url():
    """The URL of a real lab server (tidu.lab.server) on a free port, serving from a thread."""
    from tidu.lab.server import make_server, url

    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url(server)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
