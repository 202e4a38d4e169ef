"""The web target's host side (mobile/CONTRACT.md, target ``web``): a loopback HTTP server.

It serves the page (``/page/`` from mobile/web/), onnxruntime-web (``/ort/`` from
mobile/node_modules/onnxruntime-web/dist/) and a work folder the server owns
(``/arsim/`` from ``<root>/arsim/``): scenario bundles, models with their cards, and the
``runs/<run_id>/`` folders where the page POSTs ``report.json`` and, when recording, the
displayed pictures ``display/<k>.jpg`` (``k`` = index into the report's ``display``).

A scenario bundle is the scenario with its frames re-encoded as JPEG, ``frames/NNNNNN.jpg``
(Chromium cannot decode the bundled MPEG-4 part 2 video); ``scenario.json`` names
``"video": "frames/"``, ``frames.csv`` and ``poses.txt`` are copied byte for byte.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlencode, urlsplit

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.metrics.flicker import FlickerMeter
from simulator.mobile.contract import check_name
from simulator.report.json_report import write_atomic
from simulator.scenario.load import load_scenario
from simulator.scenario.model import Scenario

_REPO = Path(__file__).resolve().parents[2]
PAGE_DIR = _REPO / "mobile" / "web"
ORT_DIR = _REPO / "mobile" / "node_modules" / "onnxruntime-web" / "dist"
ORT_ENTRY = "ort.wasm.min.mjs"  # what the page imports

MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_PICTURE_BYTES = 4 * 1024 * 1024
JPEG_QUALITY = 90
_RESERVED = ("runs", "models")  # folders of arsim/ that are not scenarios
_POST_RE = re.compile(r"/arsim/runs/([^/]+)/(?:(report\.json)|display/(\d{1,6})\.jpg)")
_JPEG_MAGIC = b"\xff\xd8\xff"

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".onnx": "application/octet-stream",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".map": "application/json",
}

Progress = Callable[[int, int], None]


class WebTargetServer:
    """Threaded loopback HTTP server for the web target; use as a context manager or
    ``start()``/``stop()``. ``root`` is a work folder the server owns."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_dir: Path = PAGE_DIR,
        ort_dir: Path = ORT_DIR,
    ) -> None:
        self.root = Path(root)
        self.host, self.port = host, port
        self.page_dir, self.ort_dir = Path(page_dir), Path(ort_dir)
        self.base_url = ""
        self.log: deque[str] = deque(maxlen=200)  # recent requests and errors, for debugging
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def arsim_dir(self) -> Path:
        return self.root / "arsim"

    # --- life cycle ---------------------------------------------------------------

    def start(self) -> WebTargetServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        if not (self.ort_dir / ORT_ENTRY).is_file():
            raise InputError(self.ort_dir,
                             "onnxruntime-web is not installed; run `make mobile-setup`")
        if not (self.page_dir / "index.html").is_file():
            raise InputError(self.page_dir, "the web target page (index.html) is missing")
        (self.arsim_dir / "runs").mkdir(parents=True, exist_ok=True)
        self._routes = {
            "page": self.page_dir.resolve(),
            "ort": self.ort_dir.resolve(),
            "arsim": self.arsim_dir.resolve(),
        }
        try:
            self._httpd = _HTTPServer((self.host, self.port), _Handler, self)
        except OSError as exc:
            raise InputError(f"{self.host}:{self.port}", f"cannot listen: {exc.strerror}") from None
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="arsim-web-target", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (files under ``root`` stay)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> WebTargetServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- content ------------------------------------------------------------------

    def add_scenario(self, source: Scenario | Path, *, progress: Progress | None = None) -> str:
        """Write the web bundle of a loaded scenario, or of one loaded (and validated) here
        from a folder or .zip, to ``arsim/<name>/``; returns the scenario name."""
        loaded = source if isinstance(source, Scenario) else None
        with contextlib.nullcontext(loaded) if loaded else load_scenario(source) as scenario:
            name = scenario.name
            if name in _RESERVED:
                raise InputError(scenario.source_path, f"scenario name {name!r} is reserved "
                                 "on the web target (arsim/runs, arsim/models)")
            meta = json.loads((scenario.root / "scenario.json").read_text(encoding="utf-8-sig"))
            meta["video"] = "frames/"
            self.arsim_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.arsim_dir))
            try:
                frames_dir = staging / "frames"
                frames_dir.mkdir()
                (staging / "scenario.json").write_text(
                    json.dumps(meta, indent=2) + "\n", encoding="utf-8"
                )
                for file_name in ("frames.csv", "poses.txt"):
                    shutil.copyfile(scenario.root / file_name, staging / file_name)
                total = scenario.frame_count
                params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                for frame in scenario.frames():
                    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
                                            params)
                    if not ok:
                        raise InputError(scenario.source_path, f"frame {frame.index}: JPEG "
                                         "encoding failed")
                    (frames_dir / f"{frame.index:06d}.jpg").write_bytes(data.tobytes())
                    if progress is not None:
                        progress(frame.index + 1, total)
                target = self.arsim_dir / name
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return name

    def add_model(self, model: str, *, sizes: tuple[int, ...] = ()) -> str:
        """Copy a zoo model (name or path; built first when it is generated) to
        ``arsim/models/<name>.onnx`` and its card to ``<name>.json``; returns ``<name>``.

        The card's ``flops``/``activation_mb`` tables are completed for the default size and
        ``sizes``; ``weights_bytes`` is added (the page reports these)."""
        from simulator.mobile.platforms.base import model_files

        name, files = model_files(model, sizes)
        folder = self.arsim_dir / "models"
        folder.mkdir(parents=True, exist_ok=True)
        for filename, data in files.items():
            write_atomic(folder / filename, data)
        return name

    def page_url(self, params: Mapping[str, str | int | bool]) -> str:
        """The page's URL with the ``arsim.*`` parameters (``arsim.base`` added)."""
        if not self.base_url:
            raise RuntimeError("the server is not started")
        values = {key: _param_text(value) for key, value in params.items()}
        values.setdefault("arsim.base", self.base_url)
        return f"{self.base_url}/page/index.html?{urlencode(values, quote_via=quote)}"

    def report_path(self, run_id: str) -> Path:
        """Where the page's POSTed ``report.json`` of ``run_id`` lands."""
        return self.run_dir(run_id) / "report.json"

    def run_dir(self, run_id: str) -> Path:
        """``arsim/runs/<run_id>/``."""
        return self.arsim_dir / "runs" / check_name(run_id, "run_id")

    # --- request handling (called from the handler threads) -----------------------

    def _note(self, text: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")

    def _file_for(self, url_path: str) -> Path | None:
        """The file a GET path names, or None (not found); ValueError for a bad path."""
        parts = _split_path(url_path)
        base = self._routes.get(parts[0]) if parts else None
        if base is None or len(parts) < 2:
            return None
        target = base.joinpath(*parts[1:]).resolve()
        if not target.is_relative_to(base):
            raise ValueError("path escapes its folder")
        return target if target.is_file() else None

    def _receive(self, url_path: str, body: bytes) -> tuple[int, str]:
        """Store a POSTed report or picture; (HTTP status, message)."""
        match = _POST_RE.fullmatch("/" + "/".join(_split_path(url_path)))
        if match is None:
            return 404, "POST only to /arsim/runs/<run_id>/report.json or display/<k>.jpg"
        run_id, report, picture = match.groups()
        try:
            folder = self.run_dir(run_id)
        except InputError as exc:
            return 400, exc.problem
        if report:
            try:
                parsed = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                return 400, f"report is not JSON: {exc}"
            if not isinstance(parsed, dict):
                return 400, "report is not a JSON object"
            target = folder / "report.json"
        else:
            if len(body) > MAX_PICTURE_BYTES or not body.startswith(_JPEG_MAGIC):
                return 400, f"expected a JPEG of at most {MAX_PICTURE_BYTES} bytes"
            target = folder / "display" / f"{int(picture)}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, body)
        return 201, str(target.relative_to(self.root))


def flicker_from_recording(
    server_or_root: WebTargetServer | Path, scenario_name: str, run_id: str, report: Mapping
) -> dict | None:
    """``metrics.flicker`` measured by simulator/metrics/flicker.py on the recorded display
    pictures (``display/<k>.jpg``, paired with the bundle's input frame ``display[k].frame``),
    as the simulator measures it on its displayed results; None without a recording."""
    root = server_or_root.root if isinstance(server_or_root, WebTargetServer) else server_or_root
    root = Path(root)
    pictures = root / "arsim" / "runs" / check_name(run_id, "run_id") / "display"
    frames = root / "arsim" / scenario_name / "frames"
    display = report.get("display") or []
    if not pictures.is_dir() or not isinstance(display, list):
        return None
    meter, used = FlickerMeter(), 0
    for k, entry in enumerate(display):
        picture = pictures / f"{k}.jpg"
        if not isinstance(entry, Mapping) or not picture.is_file():
            continue
        frame = entry.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise InputError(f"report display[{k}].frame", f"expected a frame index, got {frame!r}")
        output = _read_rgb(picture)
        source = _read_rgb(frames / f"{frame:06d}.jpg")
        meter.add(float(entry.get("t", 0.0)), source, output)
        used += 1
    if used == 0:
        return None
    summary = meter.summary()
    flicker = {key: summary[key] for key in ("warp_error", "warp_error_p95", "frame_diff",
                                             "luminance_flicker")}
    flicker["ghosting_ssim"] = None
    flicker["recorded_pictures"] = used
    flicker["measured_by"] = "harness: simulator/metrics/flicker.py on the recorded display"
    return flicker


# --- helpers ----------------------------------------------------------------------------


def _param_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_path(url_path: str) -> list[str]:
    """Decoded path segments; ValueError for ``..``, ``.``, empty segments (absolute paths
    after a prefix), backslashes and NUL."""
    raw = urlsplit(url_path).path
    if not raw.startswith("/"):
        raise ValueError("not an absolute path")
    if raw == "/":
        return []
    parts = unquote(raw, errors="strict").split("/")[1:]
    for part in parts:
        if part in ("", ".", "..") or "\\" in part or "\x00" in part:
            raise ValueError("bad path segment")
    return parts


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "cannot be decoded as an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, target: WebTargetServer) -> None:
        self.target = target
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # e.g. the browser hung up mid-transfer: noted, not printed on stderr
        error = sys.exc_info()[1]
        self.target._note(f"error with {client_address}: {error.__class__.__name__}: {error}")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        self.server.target._note(format % args)

    def do_OPTIONS(self) -> None:
        self._reply(204, b"", extra={"Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
                                     "Access-Control-Allow-Headers": "Content-Type"})

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        try:
            path = self.server.target._file_for(self.path)
        except ValueError as exc:
            self._error(400, f"bad path: {exc}")
            return
        if path is None:
            self._error(404, "not found")
            return
        mime = MIME_TYPES.get(path.suffix.lower(), "application/octet-stream")
        size = path.stat().st_size
        self.send_response(200)
        self._headers(mime, size)
        if head:
            return
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._error(411, "Content-Length required")
            return
        if int(length) > MAX_REPORT_BYTES:
            self.close_connection = True  # the body is not read
            self._error(413, f"body over {MAX_REPORT_BYTES} bytes")
            return
        body = self.rfile.read(int(length))
        try:
            status, message = self.server.target._receive(self.path, body)
        except ValueError as exc:
            status, message = 400, f"bad path: {exc}"
        if status >= 400:
            self._error(status, message)
        else:
            self._reply(status, json.dumps({"stored": message}).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self.server.target._note(f"{status} {self.command} {self.path[:200]}: {message}")
        self._reply(status, (message + "\n").encode(), "text/plain; charset=utf-8")

    def _reply(self, status: int, body: bytes, mime: str = "text/plain",
               extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self._headers(mime, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _headers(self, mime: str, size: int, extra: Mapping[str, str] | None = None) -> None:
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(size))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
