"""The lab's web server without a browser: endpoints called with urllib against a real server."""
import http.client
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from tidu import lab
from tidu.lab import api, server
from tidu.optimizers import Adam, Momentum


def call(base, path, body=None, raw=None, method=None):
    """(status, parsed JSON) of a request; `raw` bytes are sent as the body as they are."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path.lstrip("/"), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def run(base, **request):
    return call(base, "/api/run", request)


def test_functions_lists_what_the_lab_offers(lab_url):
    status, info = call(lab_url, "/api/functions")
    assert status == 200
    assert list(info["functions"]) == list(lab.FUNCTIONS)
    beale = info["functions"]["beale"]
    assert beale["start"] == list(lab.FUNCTIONS["beale"].start)
    assert beale["learning_rates"] == lab.DEFAULT_LEARNING_RATES["beale"]
    assert info["optimizers"]["adam"] == {"closure": False, "hyperparameters": {"beta_1": 0.9, "beta_2": 0.999}}
    assert info["optimizers"]["momentum"]["hyperparameters"] == {"momentum": 0.9}
    assert info["optimizers"]["lbfgs"] == {"closure": True, "hyperparameters": {}}


def test_paths_are_the_labs_trajectories(lab_url):
    start, steps = [0.5, -1.0], 40
    status, out = run(lab_url, function="beale", steps=steps, start=start,
                      optimizers=[{"name": "sgd", "learning_rate": 0.002}, {"name": "adam"},
                                  {"name": "lbfgs"}])
    assert status == 200
    expected = {"sgd": lab.trajectories(["sgd"], "beale", start=start, steps=steps, learning_rate=0.002)["sgd"],
                "adam": lab.trajectories(["adam"], "beale", start=start, steps=steps)["adam"],   # the lab's lr
                "lbfgs": lab.trajectories(["lbfgs"], "beale", start=start, steps=steps)["lbfgs"]}
    assert [r["name"] for r in out["runs"]] == ["sgd", "adam", "lbfgs"]
    for r in out["runs"]:
        np.testing.assert_array_equal(r["path"], expected[r["name"]])   # exact: JSON floats round-trip
        fn = lab.get("beale")
        np.testing.assert_allclose(r["losses"], [fn(np.array(p)) for p in r["path"]], rtol=1e-12)
        assert r["diverged"] is False and len(r["path"]) == steps + 1
    assert out["runs"][1]["settings"] == {"learning_rate": lab.DEFAULT_LEARNING_RATES["beale"]["adam"]}


def test_hyperparameters_reach_the_optimizer(lab_url):
    _, out = run(lab_url, function="quadratic", steps=25, start=[-4.0, 1.0],
                 optimizers=[{"name": "momentum", "learning_rate": 0.01, "momentum": 0.5},
                             {"name": "adam", "learning_rate": 0.1, "beta_1": 0.5, "beta_2": 0.9}])
    paths = lab.trajectories([Momentum(learning_rate=0.01, momentum=0.5), Adam(learning_rate=0.1, beta_1=0.5,
                                                                               beta_2=0.9)], "quadratic", steps=25)
    np.testing.assert_array_equal(out["runs"][0]["path"], paths["Momentum"])
    np.testing.assert_array_equal(out["runs"][1]["path"], paths["Adam"])
    default = lab.trajectories(["momentum"], "quadratic", steps=25, learning_rate=0.01)["momentum"]
    assert not np.array_equal(out["runs"][0]["path"], default)     # momentum=0.5 is not the default 0.9


def test_grid_is_the_function_on_its_window(lab_url):
    _, out = run(lab_url, function="himmelblau", steps=1, optimizers=[{"name": "sgd"}])
    g, fn = out["grid"], lab.get("himmelblau")
    assert g["x"] == list(fn.xlim) and g["y"] == list(fn.ylim)
    z = np.array(g["z"])
    assert z.shape == (api.GRID_SIZE, api.GRID_SIZE)
    xs, ys = np.linspace(*fn.xlim, api.GRID_SIZE), np.linspace(*fn.ylim, api.GRID_SIZE)
    for j, i in [(0, 0), (7, 100), (60, 60), (120, 3)]:
        assert z[j, i] == pytest.approx(fn(np.array([xs[i], ys[j]])), rel=1e-5)
    assert np.all(np.diff(g["levels"]) > 0)


def test_a_diverging_path_is_cut_and_marked(lab_url):
    status, out = run(lab_url, function="quadratic", steps=3000, optimizers=[{"name": "sgd", "learning_rate": 1.0}])
    assert status == 200
    r = out["runs"][0]
    assert r["diverged"] is True and 1 < len(r["path"]) < 3001 and len(r["losses"]) == len(r["path"])
    assert np.isfinite(r["path"]).all() and np.isfinite(r["losses"]).all()


def test_an_optimizer_that_raises_is_reported_in_its_run(lab_url):
    # coordinate descent's line search finds no minimum along y on the saddle x² − y²
    status, out = run(lab_url, function="saddle", steps=50,
                      optimizers=[{"name": "coordinate_descent"}, {"name": "adam"}])
    assert status == 200
    failed, adam = out["runs"]
    assert failed["error"].startswith("coordinate_descent stopped: ") and "decreasing" in failed["error"]
    assert failed["path"][0] == list(lab.get("saddle").start) and len(failed["path"]) < 51
    assert failed["diverged"] is True
    assert adam["error"] is None and len(adam["path"]) == 51


GOOD = {"function": "beale", "optimizers": [{"name": "adam", "learning_rate": 0.05}], "steps": 10, "start": [1, 1]}


def bad(**change):
    request = {**GOOD, **change}
    return {k: v for k, v in request.items() if v is not ...}


@pytest.mark.parametrize("request_, message", [
    (bad(optimizers=[{"name": "adam", "learning_rate": -1}]),
     r"optimizers\[0\]\.learning_rate \(adam\): expected a number > 0 and <= 1000, got -1"),
    (bad(optimizers=[{"name": "adam", "learning_rate": "abc"}]), r"learning_rate \(adam\): expected .*, got 'abc'"),
    (bad(optimizers=[{"name": "adam", "learning_rate": "NaN"}]), r"got 'NaN'"),
    (bad(optimizers=[{"name": "adam", "learning_rate": None}]), r"got None"),
    (bad(optimizers=[{"name": "adamm"}]), r"optimizers\[0\]\.name: expected one of gd, sgd, .*, got 'adamm'"),
    (bad(optimizers=[{"name": "adam", "momentum": 0.9}]), r"adam takes beta_1, beta_2, learning_rate; got momentum"),
    (bad(optimizers=[{"name": "lbfgs", "learning_rate": 0.1}]), r"lbfgs takes no settings here .*got learning_rate"),
    (bad(optimizers=[{"name": "momentum", "momentum": 1.5}]), r"momentum \(momentum\): expected a number >= 0 and < 1, got 1.5"),
    (bad(optimizers=[]), r"optimizers: expected a list of 1 to 16 optimizers, got 0 of them"),
    (bad(optimizers="adam"), r"optimizers: expected a list .*, got 'adam'"),
    (bad(steps=0), r"steps: expected a whole number from 1 to 5000, got 0"),
    (bad(steps=10**9), r"steps: expected a whole number from 1 to 5000, got 1000000000"),
    (bad(steps=2.5), r"got 2.5"),
    (bad(steps="ten"), r"got 'ten'"),
    (bad(start=[1, "x"]), r"start\[1\] \(y\): expected a finite number, got 'x'"),
    (bad(start=[1]), r"start: expected a point \[x, y\] of two numbers, got \[1\]"),
    (bad(function="bael"), r"function: expected one of beale, rosenbrock, saddle, himmelblau, quadratic, got 'bael'"),
    (bad(extra=1), r"expected the fields function, optimizers, steps, start; got extra"),
    ([1, 2], r"expected a JSON object"),
])
def test_bad_requests_answer_400_with_a_message(lab_url, request_, message):
    status, out = call(lab_url, "/api/run", request_)
    assert status == 400
    assert re.search(message, out["error"]), out["error"]
    assert run(lab_url, **GOOD)[0] == 200                          # still serving


def test_non_finite_json_numbers_are_refused(lab_url):
    # Python's json reads NaN and Infinity; the lab refuses them like any other non-number
    raw = b'{"function": "beale", "optimizers": [{"name": "sgd", "learning_rate": NaN}], "steps": 5}'
    status, out = call(lab_url, "/api/run", raw=raw)
    assert status == 400 and "got nan" in out["error"]
    status, out = call(lab_url, "/api/run", raw=raw.replace(b"NaN", b"0.01").replace(b"5}", b"5, \"start\": [Infinity, 0]}"))
    assert status == 400 and "start[0] (x): expected a finite number, got inf" in out["error"]


def test_malformed_and_oversize_bodies_and_unknown_paths(lab_url):
    status, out = call(lab_url, "/api/run", raw=b'{"function": "beale", ')
    assert status == 400 and out["error"].startswith("expected a JSON body")
    status, out = call(lab_url, "/api/run", raw=b"\xff\xfe")
    assert status == 400 and "expected a JSON body" in out["error"]
    status, out = call(lab_url, "/api/run", raw=b" " * (server.MAX_BODY + 1))
    assert status == 413 and f"at most {server.MAX_BODY} bytes, got {server.MAX_BODY + 1}" in out["error"]
    status, out = call(lab_url, "/api/nothing")
    assert status == 404 and "'/api/nothing'" in out["error"]
    status, out = call(lab_url, "/api/run")                          # GET
    assert status == 405 and "expected POST" in out["error"]
    status, out = call(lab_url, "/api/functions", body={})            # POST
    assert status == 405
    status, out = call(lab_url, "/../pyproject.toml")
    assert status == 404
    assert run(lab_url, **GOOD)[0] == 200


def test_a_body_without_content_length_is_refused(lab_url):
    parts = urlsplit(lab_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("POST", "/api/run")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 400 and "Content-Length" in json.loads(r.read())["error"]
    conn.close()


@pytest.mark.parametrize("path, content_type", [("/", "text/html"), ("/index.html", "text/html"),
                                                 ("/lab.js", "text/javascript"), ("/lab.css", "text/css")])
def test_static_files_are_served_with_their_content_types(lab_url, path, content_type):
    with urllib.request.urlopen(lab_url + path.lstrip("/"), timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith(content_type)
        body = r.read()
    name = "index.html" if path == "/" else path[1:]
    assert body == (server.STATIC / name).read_bytes()


def test_static_files_load_nothing_from_other_hosts():
    files = sorted(server.STATIC.iterdir())
    assert {f.name for f in files} >= {"index.html", "lab.js", "lab.css"}
    for f in files:
        text = f.read_text()
        assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I), f.name
        assert "@import" not in text, f.name
    # every file the page asks for is one the server has
    html = (server.STATIC / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("data:") or "/" + ref in server.FILES, ref


def test_static_files_are_package_data():
    pyproject = (Path(server.__file__).resolve().parents[2] / "pyproject.toml").read_text()
    for f in server.STATIC.iterdir():
        assert f'"static/*{f.suffix}"' in pyproject, f.name


def test_tidu_lab_serve_prints_the_url_and_serves_it():
    proc = subprocess.Popen([sys.executable, "-m", "tidu.cli", "lab", "--serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(server.__file__).resolve().parents[2])
    try:
        line = proc.stdout.readline()
        found = re.search(r"serving on (http://127\.0\.0\.1:(\d+)/)", line)
        assert found and int(found.group(2)) > 0, line + proc.stderr.read() if proc.poll() is not None else line
        status, info = call(found.group(1), "/api/functions")
        assert status == 200 and "beale" in info["functions"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
