// Scenario text files, pose interpolation and anchor projection, as the simulator does them:
// simulator/scenario/poses.py (TUM, lerp + shortest-arc slerp), simulator/types.py
// (Pose.rotation, Intrinsics.project) and simulator/pipeline/compose.py (anchor boxes).
// Pure: no DOM.

const SMALL_ANGLE = 1e-6;
const NEAR_M = 0.05; // edges closer than this to the camera plane are not drawn
// The 12 edges of a box as corner index pairs (corners enumerated by sign bits).
const BOX_EDGES = [
  [0, 1], [0, 2], [0, 4], [1, 3], [1, 5], [2, 3],
  [2, 6], [3, 7], [4, 5], [4, 6], [5, 7], [6, 7],
];
const SIGNS = [];
for (const sx of [-1, 1]) for (const sy of [-1, 1]) for (const sz of [-1, 1]) SIGNS.push([sx, sy, sz]);

/** frames.csv -> [{index, timestamp, tracking}] (the simulator validated it already). */
export function parseFramesCsv(text) {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const header = lines.shift().split(",").map((c) => c.trim());
  if (header.join(",") !== "index,timestamp,tracking") throw new Error("frames.csv: bad header");
  return lines.map((line, row) => {
    const [index, timestamp, tracking] = line.split(",").map((c) => c.trim());
    const frame = { index: Number(index), timestamp: Number(timestamp), tracking };
    if (frame.index !== row || !Number.isFinite(frame.timestamp)) {
      throw new Error(`frames.csv line ${row + 2}: bad row`);
    }
    return frame;
  });
}

/** poses.txt (TUM) -> {times, positions: [[x,y,z]], quats: [[x,y,z,w]] (normalised)}. */
export function parseTum(text) {
  const times = [];
  const positions = [];
  const quats = [];
  for (const raw of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const v = line.split(/\s+/).map(Number);
    if (v.length !== 8 || v.some((x) => !Number.isFinite(x))) throw new Error("poses.txt: bad row");
    const norm = Math.hypot(v[4], v[5], v[6], v[7]);
    times.push(v[0]);
    positions.push([v[1], v[2], v[3]]);
    quats.push([v[4] / norm, v[5] / norm, v[6] / norm, v[7] / norm]);
  }
  if (times.length < 2) throw new Error("poses.txt: fewer than two poses");
  return { times, positions, quats };
}

/** Shortest-arc slerp of unit quaternions (x, y, z, w); exact at a = 0 and a = 1. */
export function slerp(q0, q1, a) {
  if (a === 0) return [...q0];
  if (a === 1) return [...q1];
  let dot = q0[0] * q1[0] + q0[1] * q1[1] + q0[2] * q1[2] + q0[3] * q1[3];
  const sign = dot < 0 ? -1 : 1;
  dot = Math.min(1, Math.max(-1, dot * sign));
  const angle = Math.acos(dot);
  const s = Math.sin(angle);
  let w0 = 1 - a;
  let w1 = a;
  if (s >= SMALL_ANGLE) {
    w0 = Math.sin((1 - a) * angle) / s;
    w1 = Math.sin(a * angle) / s;
  }
  const out = q0.map((v, i) => w0 * v + w1 * sign * q1[i]);
  const norm = Math.hypot(...out);
  return out.map((v) => v / norm);
}

/** Camera-to-world pose {t: [x,y,z], q: [x,y,z,w]} at time `t` (inside the trajectory). */
export function poseAt(trajectory, t) {
  const { times, positions, quats } = trajectory;
  if (!(t >= times[0] && t <= times[times.length - 1])) throw new Error(`pose time ${t} outside the trajectory`);
  // last i with times[i] <= t, at most n - 2 (as numpy searchsorted(side="right") - 1, clipped)
  let lo = 0;
  let hi = times.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= t) lo = mid;
    else hi = mid;
  }
  const i = Math.min(lo, times.length - 2);
  const a = (t - times[i]) / (times[i + 1] - times[i]);
  const p0 = positions[i];
  const p1 = positions[i + 1];
  return { t: p0.map((v, k) => (1 - a) * v + a * p1[k]), q: slerp(quats[i], quats[i + 1], a) };
}

/** 3x3 rotation matrix (rows) of a unit quaternion (x, y, z, w). */
export function rotation(q) {
  const [x, y, z, w] = q;
  return [
    [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
  ];
}

/** Pixels [u, v] and depth of world points for a camera pose (Intrinsics.project). */
export function project(camera, pose, points) {
  const r = rotation(pose.q);
  return points.map((p) => {
    const d = [p[0] - pose.t[0], p[1] - pose.t[1], p[2] - pose.t[2]];
    const c = [0, 1, 2].map((j) => d[0] * r[0][j] + d[1] * r[1][j] + d[2] * r[2][j]);
    const depth = -c[2];
    const safe = Math.abs(depth) < 1e-9 ? 1e-9 : depth;
    return { u: camera.cx + (camera.fx * c[0]) / safe, v: camera.cy - (camera.fy * c[1]) / safe, depth };
  });
}

/** World corners (8) of an anchor box {position, rotation?, size}. */
export function anchorCorners(anchor) {
  const r = rotation(anchor.rotation ?? [0, 0, 0, 1]);
  return SIGNS.map((s) => {
    const h = s.map((v, k) => (v * anchor.size[k]) / 2);
    return [0, 1, 2].map((i) => r[i][0] * h[0] + r[i][1] * h[1] + r[i][2] * h[2] + anchor.position[i]);
  });
}

/**
 * Line segments [x0, y0, x1, y1] (pixels of a width x height image, rounded like the
 * compositor) of every anchor's box edges in front of the camera.
 */
export function anchorSegments(camera, anchors, pose, width, height) {
  const sx = width / camera.width;
  const sy = height / camera.height;
  const segments = [];
  for (const anchor of anchors) {
    const px = project(camera, pose, anchorCorners(anchor));
    for (const [a, b] of BOX_EDGES) {
      if (px[a].depth < NEAR_M || px[b].depth < NEAR_M) continue;
      segments.push([
        Math.round(px[a].u * sx), Math.round(px[a].v * sy),
        Math.round(px[b].u * sx), Math.round(px[b].v * sy),
      ]);
    }
  }
  return segments;
}

/** Line thickness of the compositor: max(1, round(min(w, h) / 240)). */
export function lineThickness(width, height) {
  return Math.max(1, Math.round(Math.min(width, height) / 240));
}
