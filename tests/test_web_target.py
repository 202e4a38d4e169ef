"""The web target's HTTP server (simulator/mobile/web_target.py) and, marked ``browser``, the
page (mobile/web) end to end in headless Chromium."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest
from mobile_fixtures import simulator_metrics
from scenario_fixtures import make_scenario

from simulator.errors import InputError
from simulator.mobile.web_target import (
    MAX_REPORT_BYTES,
    WebTargetServer,
    flicker_from_recording,
)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ORT_DIST = REPO / "mobile" / "node_modules" / "onnxruntime-web" / "dist"


@pytest.fixture
def fake_ort(tmp_path: Path) -> Path:
    """A stand-in for onnxruntime-web's dist/ (the real one needs `make mobile-setup`)."""
    folder = tmp_path / "ort"
    folder.mkdir()
    (folder / "ort.wasm.min.mjs").write_text("export const ok = 1;\n")
    (folder / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    return folder


@pytest.fixture
def server(tmp_path: Path, fake_ort: Path) -> Iterator[WebTargetServer]:
    with WebTargetServer(tmp_path / "web", ort_dir=fake_ort) as srv:
        yield srv


def _request(srv: WebTargetServer, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = urlsplit(srv.base_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_page_ort_and_bundle_with_mime_types(server: WebTargetServer,
                                                    tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=5, name="tiny")
    assert server.add_scenario(scenario) == "tiny"
    assert server.add_model("toon-classic") == "toon-classic"
    expected = {
        "/page/index.html": "text/html",
        "/page/player.mjs": "text/javascript",
        "/page/metrics.mjs": "text/javascript",
        "/ort/ort.wasm.min.mjs": "text/javascript",
        "/ort/ort-wasm-simd-threaded.wasm": "application/wasm",
        "/arsim/tiny/scenario.json": "application/json",
        "/arsim/tiny/frames/000004.jpg": "image/jpeg",
        "/arsim/models/toon-classic.onnx": "application/octet-stream",
        "/arsim/models/toon-classic.json": "application/json",
    }
    for path, mime in expected.items():
        status, headers, body = _request(server, "GET", path)
        assert status == 200, path
        assert headers["Content-Type"].split(";")[0] == mime, path
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert int(headers["Content-Length"]) == len(body) > 0
    status, headers, body = _request(server, "HEAD", "/page/index.html")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    for missing in ("/arsim/nope/scenario.json", "/other/x", "/", "/page/missing.mjs"):
        assert _request(server, "GET", missing)[0] == 404, missing


@pytest.mark.parametrize("path", [
    "/arsim/../pyproject.toml",
    "/arsim/%2e%2e/%2e%2e/pyproject.toml",
    "/page/..%2f..%2fpyproject.toml",
    "/page/%2E%2E/%2E%2E/pyproject.toml",
    "/arsim//etc/passwd",
    "/page//etc/passwd",
    "/page/%2fetc%2fpasswd",
    "/page/index.html%00.png",
    "/page/..\\..\\pyproject.toml",
    "/ort/./ort.wasm.min.mjs",
])
def test_path_escapes_are_refused(server: WebTargetServer, path: str) -> None:
    status, _, body = _request(server, "GET", path)
    assert 400 <= status < 500
    assert b"[project]" not in body and b"root:" not in body


def test_symlink_out_of_the_folder_is_refused(server: WebTargetServer, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    (server.arsim_dir / "link.txt").symlink_to(tmp_path / "secret.txt")
    status, _, body = _request(server, "GET", "/arsim/link.txt")
    assert status == 400 and b"secret" not in body


def test_post_report_lands_atomically(server: WebTargetServer) -> None:
    report = {"schema": "arsim-report/1", "run_id": "r-1.a_b"}
    body = json.dumps(report).encode()
    status, headers, _ = _request(server, "POST", "/arsim/runs/r-1.a_b/report.json", body,
                                  {"Content-Type": "application/json"})
    assert status == 201 and headers["Access-Control-Allow-Origin"] == "*"
    path = server.report_path("r-1.a_b")
    assert path == server.root / "arsim" / "runs" / "r-1.a_b" / "report.json"
    assert path.read_bytes() == body
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left
    # a second POST replaces it
    assert _request(server, "POST", "/arsim/runs/r-1.a_b/report.json", b'{"a": 1}')[0] == 201
    assert json.loads(path.read_text()) == {"a": 1}


@pytest.mark.parametrize(("path", "body"), [
    ("/arsim/runs/bad%20id/report.json", b"{}"),
    ("/arsim/runs/../report.json", b"{}"),
    ("/arsim/runs/%2e%2e/report.json", b"{}"),
    ("/arsim/runs/" + "x" * 65 + "/report.json", b"{}"),
    ("/arsim/runs/r1/other.json", b"{}"),
    ("/arsim/tiny/scenario.json", b"{}"),
    ("/arsim/runs/r1/report.json", b"not json"),
    ("/arsim/runs/r1/report.json", b"[1, 2]"),
    ("/arsim/runs/r1/report.json", b"\xff\xfe"),
    ("/arsim/runs/r1/display/0.jpg", b"not a jpeg"),
    ("/arsim/runs/r1/display/x.jpg", b"\xff\xd8\xff\xe0"),
])
def test_bad_posts_are_refused(server: WebTargetServer, path: str, body: bytes) -> None:
    status, _, _ = _request(server, "POST", path, body)
    assert 400 <= status < 500
    assert not (server.arsim_dir / "runs" / "r1").exists()
    assert not (server.arsim_dir / "runs" / "report.json").exists()


def test_oversized_or_unsized_posts_are_refused(server: WebTargetServer) -> None:
    # only the header is sent: the server must answer without reading a body
    status, _, _ = _request(server, "POST", "/arsim/runs/r1/report.json", None,
                            {"Content-Length": str(MAX_REPORT_BYTES + 1)})
    assert status == 413
    status, _, _ = _request(server, "POST", "/arsim/runs/r1/report.json", None, {})
    assert status == 411
    assert not (server.arsim_dir / "runs" / "r1").exists()


def test_add_scenario_bundle(server: WebTargetServer, tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=12, width=64, height=48, name="tiny")
    calls: list[tuple[int, int]] = []
    server.add_scenario(scenario, progress=lambda done, total: calls.append((done, total)))
    bundle = server.arsim_dir / "tiny"
    assert calls[-1] == (12, 12) and len(calls) == 12
    for name in ("frames.csv", "poses.txt"):
        assert (bundle / name).read_bytes() == (scenario / name).read_bytes()
    original = json.loads((scenario / "scenario.json").read_text())
    meta = json.loads((bundle / "scenario.json").read_text())
    assert meta == {**original, "video": "frames/"}
    jpegs = sorted((bundle / "frames").iterdir())
    assert [p.name for p in jpegs] == [f"{i:06d}.jpg" for i in range(12)]
    for path in jpegs:
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (48, 64, 3)
    # re-adding replaces the bundle; no staging folders stay behind
    server.add_scenario(scenario)
    assert sorted(p.name for p in server.arsim_dir.iterdir()) == ["runs", "tiny"]


def test_add_scenario_refuses_reserved_names_and_bad_input(server: WebTargetServer,
                                                           tmp_path: Path) -> None:
    with pytest.raises(InputError, match="reserved"):
        server.add_scenario(make_scenario(tmp_path / "runs-sc", frames=2, name="runs"))
    with pytest.raises(InputError):
        server.add_scenario(tmp_path / "does-not-exist")
    assert sorted(p.name for p in server.arsim_dir.iterdir()) == ["runs"]


def test_add_model_copies_model_and_card(server: WebTargetServer) -> None:
    assert server.add_model("toon-classic", sizes=(128,)) == "toon-classic"
    models = server.arsim_dir / "models"
    source = REPO / "models" / "toon-classic.onnx"
    assert (models / "toon-classic.onnx").read_bytes() == source.read_bytes()
    card = json.loads((models / "toon-classic.json").read_text())
    assert card["name"] == "toon-classic" and card["input"]["range"] == [0.0, 1.0]
    assert card["input"]["layout"] == "NCHW" and card["input"]["default_size"] == 256
    assert card["flops"]["256"] == 16318464 and card["flops"]["128"] > 0
    assert card["weights_bytes"] > 0 and card["parameters"] == 86
    with pytest.raises(InputError):
        server.add_model("no-such-model")
    with pytest.raises(InputError, match="multiple"):
        server.add_model("toon-classic", sizes=(100,))


def test_page_url_and_report_path(server: WebTargetServer) -> None:
    url = server.page_url({"arsim.scenario": "tiny", "arsim.run_id": "r1",
                           "arsim.realtime": False, "arsim.input_size": 128})
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url
    assert parts.path == "/page/index.html"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {"arsim.scenario": "tiny", "arsim.run_id": "r1", "arsim.realtime": "false",
                     "arsim.input_size": "128", "arsim.base": server.base_url}
    assert "arsim.base=http%3A%2F%2F127.0.0.1" in parts.query
    for bad in ("", "..", "a/b", "x" * 65, "sp ace"):
        with pytest.raises(InputError):
            server.report_path(bad)


def test_missing_onnxruntime_web_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="make mobile-setup"):
        WebTargetServer(tmp_path / "web", ort_dir=tmp_path / "nowhere").start()


def test_flicker_from_recording(server: WebTargetServer, tmp_path: Path) -> None:
    scenario = make_scenario(tmp_path / "sc", frames=6, width=96, height=64, name="tiny")
    server.add_scenario(scenario)
    report = {"display": [{"t": 0.05 + k / 30, "frame": k} for k in range(6)]}
    assert flicker_from_recording(server, "tiny", "r1", report) is None  # nothing recorded
    frames = server.arsim_dir / "tiny" / "frames"
    for k in range(6):  # "stylized" = the input itself, at half size like the page records
        image = cv2.imread(str(frames / f"{k:06d}.jpg"))
        ok, data = cv2.imencode(".jpg", cv2.resize(image, (48, 32), interpolation=cv2.INTER_AREA))
        status, _, _ = _request(server, "POST", f"/arsim/runs/r1/display/{k}.jpg", data.tobytes())
        assert ok and status == 201
    flicker = flicker_from_recording(server.root, "tiny", "r1", report)
    assert flicker is not None and flicker["recorded_pictures"] == 6
    assert set(flicker) >= {"warp_error", "warp_error_p95", "frame_diff", "luminance_flicker"}
    assert flicker["luminance_flicker"] is not None and flicker["frame_diff"] is not None
    assert flicker["warp_error"] is None or 0 <= flicker["warp_error"] < 0.05


NODE_PARITY = """
import { readFileSync } from "node:fs";
const [pose, tensor] = await Promise.all([import(process.argv[2]), import(process.argv[3])]);
const job = JSON.parse(readFileSync(process.argv[4], "utf8"));
const trajectory = pose.parseTum(job.poses);
const rows = pose.parseFramesCsv(job.frames_csv);
const poses = job.times.map((t) => pose.poseAt(trajectory, t));
const segments = job.times.map((t, i) =>
  pose.anchorSegments(job.camera, job.anchors, poses[i], job.camera.width, job.camera.height));
const spec = tensor.imageSpec(job.card_input);
const input = new Float32Array(3 * job.size * job.size);
tensor.rgbaToTensor(Uint8Array.from(job.rgba), job.size, job.k, spec, input);
const rgba = new Uint8Array(4 * job.size * job.size);
const luma = tensor.tensorToRgba(Float32Array.from(job.output), [1, 3, job.size, job.size],
                                 tensor.imageSpec(job.card_output), rgba);
console.log(JSON.stringify({rows: rows.length, poses, segments, input: Array.from(input),
                            rgba: Array.from(rgba), luma,
                            k: tensor.shrinkFactor(640, 360, 256)}));
"""


def test_page_modules_match_the_simulator(tmp_path: Path) -> None:
    """pose.mjs and tensor.mjs against the simulator's poses, projection and Stylizer."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH; the page's modules are untested")
    from simulator.metrics.flicker import mean_luminance
    from simulator.pipeline.compose import _BOX_EDGES, anchor_corners
    from simulator.pipeline.stylize import Stylizer
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    folder = REPO / "scenarios" / "orbit-desk"
    meta = json.loads((folder / "scenario.json").read_text())
    size, k = 32, 2
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (k * size, k * size, 3), dtype=np.uint8)
    rgba = np.concatenate([big, np.full((k * size, k * size, 1), 255, np.uint8)], axis=2)
    output = rng.uniform(-0.2, 1.2, (1, 3, size, size)).astype(np.float32)
    with load_scenario(folder) as scenario:
        # The page keeps the files' own clock; the simulator counts from the first frame.
        frames_csv = (folder / "frames.csv").read_text()
        file_times = [float(row.split(",")[1]) for row in frames_csv.splitlines()[1:]][::37]
        times = [float(t) for t in scenario.frame_times[::37]]
        job = {"poses": (folder / "poses.txt").read_text(),
               "frames_csv": frames_csv, "times": file_times,
               "camera": meta["camera"], "anchors": meta["anchors"], "size": size, "k": k,
               "rgba": rgba.ravel().tolist(), "output": output.ravel().tolist(),
               "card_input": {"layout": "NCHW", "range": [-1, 1], "channels": "BGR"},
               "card_output": {"layout": "NCHW", "range": [0, 1], "channels": "RGB"}}
        (tmp_path / "job.json").write_text(json.dumps(job))
        (tmp_path / "parity.mjs").write_text(NODE_PARITY)
        web = REPO / "mobile" / "web"
        done = subprocess.run([node, str(tmp_path / "parity.mjs"), (web / "pose.mjs").as_uri(),
                               (web / "tensor.mjs").as_uri(), str(tmp_path / "job.json")],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert got["rows"] == scenario.frame_count and got["k"] == 2
        for t, js_pose, js_segments in zip(times, got["poses"], got["segments"], strict=True):
            pose = scenario.pose_at(t)
            np.testing.assert_allclose(js_pose["t"], pose.t, atol=1e-12)
            np.testing.assert_allclose(js_pose["q"], pose.q, atol=1e-12)
            expected = []
            for anchor in scenario.anchors:
                pixels, depth = scenario.camera.project(pose, anchor_corners(anchor))
                for a, b in _BOX_EDGES:
                    if depth[a] >= 0.05 and depth[b] >= 0.05:
                        expected.append([*np.round(pixels[a]), *np.round(pixels[b])])
            assert js_segments == expected
        assert any(got["segments"])

    model = resolve_model("toon-classic")
    card_input = replace(model.card.input, value_range=(-1.0, 1.0), channels="BGR", min_size=16)
    model.card = replace(model.card, input=card_input)  # as card_input in the job above
    stylizer = Stylizer(model, size)
    np.testing.assert_allclose(np.array(got["input"]).reshape(1, 3, size, size),
                               stylizer.preprocess(big), atol=1e-6)
    picture = stylizer.postprocess(output.copy(), size, size)
    js_rgba = np.array(got["rgba"], np.uint8).reshape(size, size, 4)
    assert np.abs(js_rgba[..., :3].astype(int) - picture.astype(int)).max() <= 1
    assert abs(got["luma"] - mean_luminance(picture)) < 1e-3


def _browser_or_skip() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, ORT_DIST / "ort.wasm.min.mjs")
               if not p.exists()]
    if missing:
        reason = f"{', '.join(missing)} missing (run `make mobile-setup`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.mark.browser
def test_page_plays_orbit_desk_in_headless_chromium(tmp_path: Path) -> None:
    _browser_or_skip()
    jsonschema = pytest.importorskip("jsonschema")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    frames = 30
    with WebTargetServer(tmp_path / "web") as server:
        name = server.add_scenario(REPO / "scenarios" / "orbit-desk")
        model = server.add_model("toon-classic")
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            driver.get(server.page_url({
                "arsim.scenario": name, "arsim.run_id": "browser-1", "arsim.model": model,
                "arsim.realtime": False, "arsim.max_frames": frames, "arsim.record": True,
            }))
            deadline = time.monotonic() + 25
            state = None
            while time.monotonic() < deadline:
                state = driver.execute_script("return window.arsim && window.arsim.state")
                if state in ("done", "error"):
                    break
                time.sleep(0.2)
            logs = [entry["message"] for entry in driver.get_log("browser")]
        finally:
            driver.quit()
        assert state == "done", f"page state {state}; console: {logs[-5:]}"
        assert any("ARSIM start browser-1 30" in line for line in logs)
        assert any("ARSIM done " + server.base_url + "/arsim/runs/browser-1/report.json" in line
                   for line in logs)
        report = json.loads(server.report_path("browser-1").read_text())
        flicker = flicker_from_recording(server, name, "browser-1", report)

    schema = json.loads((REPO / "mobile" / "report.schema.json").read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(report)]
    assert errors == []
    assert report["target"] == "web" and report["run_id"] == "browser-1" and report["complete"]
    assert report["backend"] == "wasm" and report["input_size"] == 256
    assert report["scenario"] == {**report["scenario"], "name": "orbit-desk", "frames": frames,
                                  "width": 640, "height": 360}
    assert report["model"]["flops"] == 16318464 and report["model"]["parameters"] == 86
    assert len(report["frames"]) == frames and len(report["display"]) == frames
    assert all(f["stylized"] and not f["dropped"] for f in report["frames"])
    assert report["frames"][0]["t_capture"] == 0
    for f in report["frames"]:
        assert f["t_capture"] <= f["t_infer_start"] < f["t_infer_end"] < f["t_display"]
    metrics = report["metrics"]
    assert metrics["inference_ms"]["p50"] > 0 and metrics["display_fps"] > 0
    # rates from the page's own timestamps, as the simulator's code computes them
    want = simulator_metrics(report)
    for key in ("display_fps", "inference_fps", "display_interval_ms", "inference_interval_ms",
                "samples", "jank_pct"):
        assert metrics[key] == pytest.approx(want[key], abs=1e-6), key
    assert metrics["samples"]["latencies"] == frames
    assert metrics["display_interval_ms"]["n"] == frames - 1
    assert metrics["memory_peak_mb"] is None and metrics["flicker"]["warp_error"] is None
    assert {c["name"] for c in report["verdict"]["checks"]} == {
        "min_display_fps", "max_latency_p95_ms", "max_jank_pct"}
    assert flicker is not None and flicker["recorded_pictures"] == frames
    assert flicker["warp_error"] is not None and np.isfinite(flicker["warp_error"])
    shutil.rmtree(tmp_path / "web", ignore_errors=True)
