// The arsim web target: mobile/CONTRACT.md for target "web" (see mobile/web/README.md).
// Replays a scenario bundle served by simulator/mobile/web_target.py through an ONNX model
// in onnxruntime-web (WASM, one thread, on this page's main thread), measures itself and
// POSTs report.json (schema arsim-report/1).

import { budgetsWith, BUDGET_METRICS, evaluate, sessionMetrics } from "./metrics.mjs";
import { anchorSegments, lineThickness, parseFramesCsv, parseTum, poseAt } from "./pose.mjs";
import { imageSpec, outputSize, rgbaToTensor, shrinkFactor, tensorToRgba } from "./tensor.mjs";

const VERSION = "0.1.0";
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const KNOWN_PARAMS = new Set([
  "arsim.scenario", "arsim.run_id", "arsim.model", "arsim.input_size", "arsim.backend",
  "arsim.realtime", "arsim.warmup_frames", "arsim.base", "arsim.device", "arsim.record",
  "arsim.max_frames", "arsim.budgets",
]);
// requested name -> the onnxruntime-web execution provider that runs it (report `backend`)
// (no webgl: onnxruntime-web's deprecated WebGL provider rejects the zoo's models: int64
// shape tensors, symbolic input sizes)
const BACKENDS = { wasm: "wasm", cpu: "wasm", webgpu: "webgpu" };
// the smallest onnxruntime-web bundle that has each provider
const ORT_BUNDLES = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs" };
const DISPLAY_RATES = [24, 30, 48, 50, 60, 72, 75, 90, 100, 120, 144, 165, 240];
const PRELOAD_LIMIT_BYTES = 512 * 1024 * 1024; // decoded frames held at most; else decode on arrival
const RECORD_WIDTH = 320;
const ANCHOR_COLOUR = "rgb(255, 64, 160)";
const PROGRESS_EVERY_MS = 500;

const status = { state: "loading", done: 0, total: 0, error: null, report: null };
window.arsim = status;

class ArsimError extends Error {}

function fail(message) {
  throw new ArsimError(message);
}

function contract(line) {
  console.log(`ARSIM ${line}`);
}

function show(text) {
  const element = document.getElementById("status");
  if (element) element.textContent = text;
}

// --- parameters ------------------------------------------------------------------------

function parseBool(key, text) {
  if (text === "true" || text === "1") return true;
  if (text === "false" || text === "0") return false;
  return fail(`${key}: expected true or false, got '${text}'`);
}

function parseInt10(key, text, minimum) {
  if (!/^\d{1,9}$/.test(text) || Number(text) < minimum) {
    fail(`${key}: expected an integer >= ${minimum}, got '${text}'`);
  }
  return Number(text);
}

function parseBudgets(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    fail("arsim.budgets: not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail("arsim.budgets: expected a JSON object");
  for (const [name, limit] of Object.entries(value)) {
    if (!(name in BUDGET_METRICS)) fail(`arsim.budgets: unknown budget '${name}'`);
    if (limit !== null && (typeof limit !== "number" || !Number.isFinite(limit))) {
      fail(`arsim.budgets.${name}: expected a number or null`);
    }
  }
  return value;
}

export function parseParams(search, origin) {
  const query = new URLSearchParams(search);
  const get = (key) => {
    const values = query.getAll(key);
    if (values.length > 1) fail(`${key} given ${values.length} times`);
    return values.length ? values[0] : null;
  };
  for (const key of new Set(query.keys())) {
    if (key.startsWith("arsim.") && !KNOWN_PARAMS.has(key)) fail(`unknown parameter ${key}`);
  }
  const name = (key) => {
    const value = get(key);
    if (value === null) fail(`missing parameter ${key}`);
    if (!NAME_RE.test(value) || /^\.+$/.test(value)) fail(`${key}: expected 1-64 of [A-Za-z0-9._-], got '${value}'`);
    return value;
  };
  const params = {
    scenario: name("arsim.scenario"),
    runId: name("arsim.run_id"),
    model: name("arsim.model"),
    inputSize: get("arsim.input_size") === null ? null : parseInt10("arsim.input_size", get("arsim.input_size"), 1),
    backend: get("arsim.backend") ?? "wasm",
    realtime: get("arsim.realtime") === null ? true : parseBool("arsim.realtime", get("arsim.realtime")),
    warmupFrames: get("arsim.warmup_frames") === null ? 0 : parseInt10("arsim.warmup_frames", get("arsim.warmup_frames"), 0),
    maxFrames: get("arsim.max_frames") === null ? null : parseInt10("arsim.max_frames", get("arsim.max_frames"), 1),
    record: get("arsim.record") === null ? false : parseBool("arsim.record", get("arsim.record")),
    device: get("arsim.device") ?? "web-chromium",
    budgets: get("arsim.budgets") === null ? null : parseBudgets(get("arsim.budgets")),
    base: (get("arsim.base") ?? origin).replace(/\/+$/, ""),
  };
  if (!(params.backend in BACKENDS)) fail(`arsim.backend: '${params.backend}' is not supported on the web target (wasm, cpu, webgpu)`);
  if (!/^.{1,64}$/.test(params.device)) fail("arsim.device: expected 1-64 characters");
  if (!/^https?:\/\/[^/?#]+$/.test(params.base)) fail(`arsim.base: expected http(s)://host[:port], got '${params.base}'`);
  return params;
}

// --- loading -----------------------------------------------------------------------------

async function fetchOk(url, what) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (err) {
    fail(`${what}: cannot fetch ${url} (${err.message})`);
  }
  if (response.status === 404) fail(`unknown ${what} (${url}: 404)`);
  if (!response.ok) fail(`${what}: ${url}: HTTP ${response.status}`);
  return response;
}

async function fetchJson(url, what) {
  const response = await fetchOk(url, what);
  try {
    return await response.json();
  } catch {
    return fail(`${what}: ${url} is not JSON`);
  }
}

async function fetchText(url, what) {
  return (await fetchOk(url, what)).text();
}

function checkInputSize(card, size) {
  const input = card.input ?? {};
  const min = input.min_size ?? 64;
  const max = input.max_size ?? 1024;
  const multiple = input.size_multiple ?? 8;
  if (size < min || size > max) fail(`arsim.input_size: input size ${size} is outside ${min}..${max} (model ${card.name})`);
  if (size % multiple) fail(`arsim.input_size: input size ${size} is not a multiple of ${multiple} (model ${card.name})`);
}

async function mapLimited(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function nextAnimationFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
}

async function estimateDisplayHz() {
  const stamps = [];
  for (let i = 0; i < 31; i++) stamps.push(await nextAnimationFrame());
  const intervals = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
  const hz = 1000 / intervals[Math.floor(intervals.length / 2)];
  return DISPLAY_RATES.reduce((best, rate) => (Math.abs(rate - hz) < Math.abs(best - hz) ? rate : best));
}

function describeBrowser(ua) {
  const browser = [
    [/Edg\/(\d+)/, "Edge"], [/HeadlessChrome\/(\d+)/, "Headless Chromium"], [/CriOS\/(\d+)/, "Chrome"],
    [/Chrome\/(\d+)/, "Chrome"], [/FxiOS\/(\d+)/, "Firefox"], [/Firefox\/(\d+)/, "Firefox"],
    [/Version\/(\d+)[\d.]* .*Safari/, "Safari"],
  ].find(([re]) => re.test(ua));
  const version = browser ? `${browser[1]} ${ua.match(browser[0])[1]}` : "browser";
  let os = "unknown";
  let m;
  if ((m = ua.match(/Android (\d+(?:\.\d+)?)/))) os = `Android ${m[1]}`;
  else if ((m = ua.match(/(?:iPhone|CPU) OS (\d+)_(\d+)/))) os = `iOS ${m[1]}.${m[2]}`;
  else if (/CrOS/.test(ua)) os = "ChromeOS";
  else if (/Mac OS X/.test(ua)) os = "macOS";
  else if (/Windows/.test(ua)) os = "Windows";
  else if ((m = ua.match(/Linux( [\w_]+)?/))) os = `Linux${m[1] ?? ""}`;
  return { name: `${version} on ${os}`, os };
}

// --- the pipeline ------------------------------------------------------------------------

class Stylizer {
  constructor(ort, session, card, size, camera) {
    this.ort = ort;
    this.session = session;
    this.size = size;
    this.inSpec = imageSpec(card.input);
    this.outSpec = imageSpec(card.output);
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames[0];
    this.k = shrinkFactor(camera.width, camera.height, size);
    const big = this.k * size;
    this.prep = new OffscreenCanvas(big, big).getContext("2d", { willReadFrequently: true });
    this.prep.imageSmoothingEnabled = true;
    this.prep.imageSmoothingQuality = "low"; // bilinear, as the Stylizer's first step
    this.input = new Float32Array(3 * size * size);
    const dims = this.inSpec.nchw ? [1, 3, size, size] : [1, size, size, 3];
    this.tensor = new ort.Tensor("float32", this.input, dims);
    this.outCanvas = null;
    this.outImage = null;
  }

  preprocess(bitmap) {
    const big = this.k * this.size;
    this.prep.drawImage(bitmap, 0, 0, big, big);
    const pixels = this.prep.getImageData(0, 0, big, big).data;
    rgbaToTensor(pixels, this.size, this.k, this.inSpec, this.input);
  }

  /** The bare model call (what inference_ms measures). */
  async run() {
    const outputs = await this.session.run({ [this.inputName]: this.tensor });
    return outputs[this.outputName];
  }

  /** Output tensor -> this.outCanvas; returns the mean luma of the picture. */
  postprocess(output) {
    const { width, height } = outputSize(output.dims, this.outSpec);
    if (!this.outCanvas || this.outCanvas.width !== width || this.outCanvas.height !== height) {
      this.outCanvas = new OffscreenCanvas(width, height);
      this.outImage = new ImageData(width, height);
    }
    const luma = tensorToRgba(output.data, output.dims, this.outSpec, this.outImage.data);
    this.outCanvas.getContext("2d").putImageData(this.outImage, 0, 0);
    if (typeof output.dispose === "function") output.dispose();
    return luma;
  }
}

function drawAnchors(ctx, scene, pose, width, height) {
  const segments = anchorSegments(scene.camera, scene.anchors, pose, width, height);
  if (!segments.length) return;
  ctx.save();
  ctx.strokeStyle = ANCHOR_COLOUR;
  ctx.lineWidth = lineThickness(width, height);
  ctx.lineCap = "round";
  ctx.beginPath();
  for (const [x0, y0, x1, y1] of segments) {
    ctx.moveTo(x0 + 0.5, y0 + 0.5); // OpenCV pixel centres are at integers, canvas ones at +0.5
    ctx.lineTo(x1 + 0.5, y1 + 0.5);
  }
  ctx.stroke();
  ctx.restore();
}

function drawHud(ctx, text, height) {
  const px = Math.max(9, Math.round(height / 36));
  ctx.save();
  ctx.font = `${px}px sans-serif`;
  const width = ctx.measureText(text).width;
  const pad = Math.max(2, Math.round(px / 3));
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, width + 2 * pad, px + 2 * pad);
  ctx.fillStyle = "#fff";
  ctx.textBaseline = "top";
  ctx.fillText(text, pad, pad);
  ctx.restore();
}

async function load(params) {
  const scenarioUrl = `${params.base}/arsim/${params.scenario}`;
  const modelUrl = `${params.base}/arsim/models/${params.model}`;
  const [meta, framesCsv, posesTxt, card] = await Promise.all([
    fetchJson(`${scenarioUrl}/scenario.json`, `scenario '${params.scenario}'`),
    fetchText(`${scenarioUrl}/frames.csv`, `scenario '${params.scenario}' frames.csv`),
    fetchText(`${scenarioUrl}/poses.txt`, `scenario '${params.scenario}' poses.txt`),
    fetchJson(`${modelUrl}.json`, `model '${params.model}'`),
  ]);
  const size = params.inputSize ?? card.input?.default_size ?? 256;
  checkInputSize(card, size);
  let rows;
  let trajectory;
  try {
    rows = parseFramesCsv(framesCsv);
    trajectory = parseTum(posesTxt);
  } catch (err) {
    fail(`scenario '${params.scenario}': ${err.message}`);
  }
  if (params.maxFrames !== null) rows = rows.slice(0, params.maxFrames);
  const scene = {
    name: meta.name ?? params.scenario,
    fps: meta.fps,
    camera: meta.camera,
    anchors: meta.anchors ?? [],
    expect: meta.expect ?? {},
    rows,
    trajectory,
    url: `${scenarioUrl}/`,
  };

  show(`loading ${params.model}`);
  const provider = BACKENDS[params.backend];
  if (provider === "webgpu" && !navigator.gpu) fail("arsim.backend: webgpu is not available in this browser (no navigator.gpu)");
  let ort;
  try {
    ort = await import(`${params.base}/ort/${ORT_BUNDLES[provider]}`);
  } catch (err) {
    fail(`cannot load onnxruntime-web from ${params.base}/ort/ (${err.message}); run make mobile-setup`);
  }
  ort.env.wasm.wasmPaths = `${params.base}/ort/`;
  ort.env.wasm.numThreads = 1; // on this main thread: DevTools CPU throttling slows it
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const modelBytes = new Uint8Array(await (await fetchOk(`${modelUrl}.onnx`, `model '${params.model}'`)).arrayBuffer());
  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: [provider],
      graphOptimizationLevel: "all",
    });
  } catch (err) {
    fail(`model '${params.model}': onnxruntime-web cannot load it (${String(err.message ?? err).split("\n")[0]})`);
  }
  const stylizer = new Stylizer(ort, session, card, size, scene.camera);

  // Frames: decoded up front when they fit in PRELOAD_LIMIT_BYTES, else kept as JPEG blobs
  // and decoded when they arrive (that decode then counts in the latency).
  const preload = rows.length * scene.camera.width * scene.camera.height * 4 <= PRELOAD_LIMIT_BYTES;
  let loaded = 0;
  const images = await mapLimited(rows, 8, async (row) => {
    const name = String(row.index).padStart(6, "0");
    const blob = await (await fetchOk(`${scenarioUrl}/frames/${name}.jpg`, `scenario '${params.scenario}' frame ${row.index}`)).blob();
    const image = preload ? await createImageBitmap(blob) : blob;
    loaded += 1;
    if (loaded % 30 === 0) show(`loading frames ${loaded}/${rows.length}`);
    return image;
  });
  return { scene, card, size, stylizer, images, preload, modelUrl: `${modelUrl}.onnx` };
}

async function play(params, ctx) {
  const { scene, stylizer, images } = ctx;
  const n = scene.rows.length;
  const { width, height } = scene.camera;
  const canvas = document.getElementById("screen");
  canvas.width = width;
  canvas.height = height;
  const screen = canvas.getContext("2d", { alpha: false });
  screen.imageSmoothingEnabled = true;
  screen.imageSmoothingQuality = "low"; // bilinear, as the Stylizer's resize back
  const recordHeight = Math.round((height * Math.min(RECORD_WIDTH, width)) / width);
  const recordWidth = Math.min(RECORD_WIDTH, width);
  const bitmap = async (i) => (ctx.preload ? images[i] : createImageBitmap(images[i]));

  for (let w = 0; w < params.warmupFrames; w++) {
    stylizer.preprocess(await bitmap(w % n));
    stylizer.postprocess(await stylizer.run());
  }

  const stamps = scene.rows.map((r) => r.timestamp);
  const arrival = stamps.map((t) => t - stamps[0]);
  const records = scene.rows.map((r, i) => ({
    index: i, t_capture: params.realtime ? arrival[i] : null, timestamp: r.timestamp,
    tracking: r.tracking, stylized: false, t_infer_start: null, t_infer_end: null,
    input_size: null, displayed: false, reused: false, t_display: null, dropped: false, skipped: false,
  }));
  const display = [];
  const recorded = []; // [display index, small canvas] when recording
  let tEnd = params.realtime ? arrival[n - 1] + 1 / scene.fps : Infinity;

  status.state = "playing";
  status.total = n;
  contract(`start ${params.runId} ${n}`);
  let t0 = performance.now();
  const rel = () => (performance.now() - t0) / 1000;
  let lastProgress = performance.now();
  let next = 0; // first frame neither taken nor superseded
  let arrived = -1; // newest frame that has arrived

  const stylizeAndShow = async (i) => {
    const rec = records[i];
    stylizer.preprocess(await bitmap(i));
    rec.stylized = true;
    rec.input_size = stylizer.size;
    const start = performance.now();
    const output = await stylizer.run();
    const end = performance.now();
    rec.t_infer_start = (start - t0) / 1000;
    rec.t_infer_end = (end - t0) / 1000;
    if (rec.t_infer_end > tEnd) return; // the session ended while it ran: never shown
    const luma = stylizer.postprocess(output);
    screen.drawImage(stylizer.outCanvas, 0, 0, width, height);
    let small = null;
    if (params.record) {
      small = new OffscreenCanvas(recordWidth, recordHeight);
      const sctx = small.getContext("2d");
      sctx.imageSmoothingQuality = "low";
      sctx.drawImage(canvas, 0, 0, recordWidth, recordHeight); // the stylized picture, no overlay
    }
    if (rec.tracking !== "lost") drawAnchors(screen, scene, poseAt(scene.trajectory, rec.timestamp), width, height);
    const now = rel();
    const recent = display.filter((d) => d.t > now - 1).length;
    const hud = `${recent.toFixed(1).padStart(4)} FPS  ${(1000 * (now - rec.t_capture)).toFixed(0).padStart(5)} ms`;
    drawHud(screen, hud, height);
    // shown at the next animation frame; inference waits for it (one main thread)
    const shownAt = (await nextAnimationFrame() - t0) / 1000;
    if (shownAt > tEnd) return;
    rec.t_display = shownAt;
    rec.displayed = true;
    if (small) recorded.push([display.length, small]);
    display.push({
      t: shownAt, frame: i, source: i, kind: "new", refresh: false,
      latency_ms: 1000 * (shownAt - rec.t_capture), content_age_ms: 1000 * (shownAt - rec.t_capture),
      warp_error: null, luminance: luma,
    });
  };

  while (next < n) {
    let pick;
    if (params.realtime) {
      const now = rel();
      if (now > tEnd) break;
      while (arrived + 1 < n && arrival[arrived + 1] <= now) arrived += 1;
      if (arrived < next) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 * (arrival[next] - now))));
        continue;
      }
      for (let i = next; i < arrived; i++) records[i].dropped = true; // superseded while waiting
      pick = arrived;
    } else {
      const fed = performance.now();
      if (next === 0) t0 = fed; // time zero is the first frame's capture
      pick = next;
      records[pick].t_capture = (fed - t0) / 1000;
    }
    next = pick + 1;
    await stylizeAndShow(pick);
    status.done = next;
    if (performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
      contract(`progress ${next}/${n}`);
      lastProgress = performance.now();
    }
  }
  if (!params.realtime) tEnd = rel();
  for (const rec of records) rec.dropped = rec.t_display === null && !rec.skipped;
  status.done = n;
  contract(`progress ${n}/${n}`);
  return { records, display, recorded, tEnd };
}

function buildReport(params, ctx, run, device) {
  const { scene, card, size } = ctx;
  const { records, display, tEnd } = run;
  const budgets = params.budgets ? budgetsWith(params.budgets) : budgetsWith(null, scene.expect);
  const timing = sessionMetrics({
    frames: records, display, displayHz: device.display_hz, cameraFps: scene.fps, tEnd,
    background: [], minDisplayFps: budgets.min_display_fps ?? null,
  });
  const metrics = {
    ...timing,
    reused_frames: 0,
    resized_inferences: 0,
    flicker: {
      warp_error: null, warp_error_p95: null, frame_diff: null,
      luminance_flicker: timing.flicker.luminance_flicker, ghosting_ssim: null,
    },
    memory_peak_mb: null, // performance.measureUserAgentSpecificMemory needs cross-origin isolation
    thermal_factor_max: null,
  };
  const n = records.length;
  const stamps = scene.rows.map((r) => r.timestamp);
  return {
    schema: "arsim-report/1",
    complete: true,
    incomplete_reason: null,
    generated_by: `arsim-web ${VERSION}`,
    target: "web",
    run_id: params.runId,
    scenario: {
      name: scene.name, path: scene.url, frames: n,
      duration_s: stamps[n - 1] - stamps[0] + 1 / scene.fps, fps: scene.fps,
      width: scene.camera.width, height: scene.camera.height,
    },
    device,
    backend: BACKENDS[params.backend],
    model: {
      name: card.name, path: ctx.modelUrl, flops: card.flops?.[String(size)] ?? null,
      parameters: card.parameters ?? null, weights_bytes: card.weights_bytes ?? null,
      activation_mb: card.activation_mb?.[String(size)] ?? null,
    },
    input_size: size,
    budgets,
    metrics,
    oom_events: [],
    verdict: evaluate(metrics, budgets, 0),
    frames: records,
    display,
    playback: {
      realtime: params.realtime, warmup_frames: params.warmupFrames, max_frames: params.maxFrames,
      record: params.record, t_end: tEnd, frames_preloaded: ctx.preload,
    },
    host: { user_agent: navigator.userAgent, hardware_concurrency: navigator.hardwareConcurrency ?? null },
  };
}

async function post(url, body, type) {
  let response;
  try {
    response = await fetch(url, { method: "POST", headers: { "Content-Type": type }, body });
  } catch (err) {
    fail(`POST ${url} failed (${err.message})`);
  }
  if (response.status !== 201) fail(`POST ${url}: HTTP ${response.status} ${(await response.text()).trim()}`);
}

async function main() {
  const params = parseParams(location.search, location.origin);
  show(`loading ${params.scenario}`);
  const ctx = await load(params);
  const ua = describeBrowser(navigator.userAgent);
  const device = {
    id: params.device,
    name: ua.name,
    display_hz: await estimateDisplayHz(),
    ram_mb: navigator.deviceMemory ? navigator.deviceMemory * 1024 : null,
    os: ua.os,
  };
  show(`playing ${ctx.scene.name} (${params.model} @ ${ctx.size})`);
  const run = await play(params, ctx);
  status.state = "reporting";
  const report = buildReport(params, ctx, run, device);
  const runUrl = `${params.base}/arsim/runs/${params.runId}`;
  for (const [k, small] of run.recorded) {
    const blob = await small.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    await post(`${runUrl}/display/${k}.jpg`, blob, "image/jpeg");
  }
  await post(`${runUrl}/report.json`, JSON.stringify(report), "application/json");
  status.report = report;
  status.state = "done";
  const m = report.metrics;
  show(`done: ${m.display_fps.toFixed(1)} FPS, latency p95 ${m.latency_ms.p95?.toFixed(0) ?? "-"} ms, inference p50 ${m.inference_ms.p50?.toFixed(1) ?? "-"} ms`);
  contract(`done ${runUrl}/report.json`);
}

main().catch((err) => {
  const message = err instanceof ArsimError ? err.message : `${err.name ?? "Error"}: ${err.message ?? err}`;
  status.state = "error";
  status.error = message.replace(/\s+/g, " ").trim();
  show(`error: ${status.error}`);
  contract(`error ${status.error}`);
});
