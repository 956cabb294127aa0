"""`tidu lab --serve`: the optimizer lab as a page in the browser, served from this machine.

Endpoints (JSON in and out; every error is {"error": message}):

    GET  /                 the page (index.html, lab.js, lab.css from tidu/lab/static)
    GET  /api/functions    api.describe(): {functions: {name: {xlim, ylim, start, minima,
                           learning_rates}}, optimizers: {name: {closure, hyperparameters}},
                           limits: {max_steps, max_optimizers}, defaults: {...}}
    POST /api/run          body {function, optimizers: [{name, learning_rate, momentum | beta_1 |
                           beta_2 | rho}], steps, start: [x, y]} -> api.run(): {runs: [{name,
                           settings, path, losses, diverged, error}], grid: {x, y, z, levels, log}}

Status codes: 400 for a request the lab cannot run (bad JSON, a learning rate of -1, an unknown
optimizer, ...), with a message naming the field, what was expected and what was got; 404 for
an unknown path; 405 for a wrong method; 413 for a body over MAX_BODY bytes (not read); 500
for a bug (the server keeps serving in every case).

Why the standard library (http.server.ThreadingHTTPServer + json) and not a web framework: the
lab has three static files and two JSON endpoints, nothing to template, route or persist, so a
framework would add a dependency and buy nothing. Every file the page loads ships in
tidu/lab/static (no CDN), so the page works without a network. The server binds 127.0.0.1
unless told otherwise: it has no authentication, and a run costs CPU.
"""
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tidu.lab import api

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"/": "index.html", "/index.html": "index.html", "/lab.js": "lab.js", "/lab.css": "lab.css"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
MAX_BODY = 64 * 1024


class LabHandler(BaseHTTPRequestHandler):
    """Serves FILES and the two endpoints; anything else answers a JSON error."""

    server_version = "tidu-lab"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in FILES:
            name = FILES[path]
            self._send(200, (STATIC / name).read_bytes(), CONTENT_TYPES[Path(name).suffix])
        elif path == "/api/functions":
            self._json(200, api.describe())
        elif path == "/api/run":
            self._json(405, {"error": "/api/run: expected POST with a JSON body, got GET"})
        else:
            self._json(404, {"error": f"no such page: {path!r} (the lab serves /, /api/functions, /api/run)"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path != "/api/run":
            self.close_connection = True    # the body is not read
            known = path in FILES or path == "/api/functions"
            return self._json(405 if known else 404, {"error": f"POST {path!r}: the lab takes POST only at /api/run"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._json(400, {"error": "expected a Content-Length header with the body's size"})
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return self._json(413, {"error": f"expected a body of at most {MAX_BODY} bytes, got {length}"})
        try:
            request = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError) as e:
            return self._json(400, {"error": f"expected a JSON body, got one that does not parse ({e})"})
        try:
            self._json(200, api.run(request))
        except api.BadRequest as e:
            self._json(400, {"error": str(e)})
        except Exception as e:  # a bug: say so, keep serving
            self._json(500, {"error": f"the lab failed on this request: {type(e).__name__}: {e}"})

    def _json(self, status, obj):
        self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # quiet: the terminal shows the URL, not every request
        pass


def make_server(host="127.0.0.1", port=0):
    """A ThreadingHTTPServer for the lab on host:port (0: any free port), not yet serving;
    call serve_forever() (and shutdown()/server_close() to stop)."""
    cls = ThreadingHTTPServer
    if ":" in host:                      # an IPv6 address such as ::1
        cls = type("ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = cls((host, port), LabHandler)
    server.daemon_threads = True
    return server


def url(server):
    """http://host:port/ of a server from make_server."""
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


def serve(host="127.0.0.1", port=8000):
    """Serve the lab until Ctrl-C; prints the URL first."""
    server = make_server(host, port)
    print(f"tidu lab: serving on {url(server)}  (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tidu lab: listening on {host}, reachable from other machines; it has no authentication",
              flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
