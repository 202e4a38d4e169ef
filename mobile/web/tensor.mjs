// Model input and output as simulator/pipeline/stylize.py builds them from the model card:
// the camera frame is resized to size x size the Stylizer's way (bilinear to k*size square,
// k = floor(longer side / size), then an exact k x k area average; the bilinear step is the
// canvas's), scaled from 0..255 onto the card's range, in its layout and channel order; the
// output is clipped to its range, scaled back to 0..255 and rounded. Pure: no DOM.

const REC709 = [0.2126, 0.7152, 0.0722];

/** k of shrink_to_square: how many source pixels per model pixel the area step averages. */
export function shrinkFactor(width, height, size) {
  return Math.max(1, Math.floor(Math.max(width, height) / size));
}

/** Parsed card image spec -> {nchw, swap, low, high}. */
export function imageSpec(spec = {}) {
  const [low, high] = spec.range ?? [0, 1];
  return { nchw: (spec.layout ?? "NCHW") === "NCHW", swap: spec.channels === "BGR", low, high };
}

/**
 * RGBA pixels of the (k*size)^2 square -> float32 model input of size x size, written into
 * `out` (length 3*size*size). The k x k average is rounded to a grey level, like OpenCV's
 * uint8 INTER_AREA result the Stylizer scales.
 */
export function rgbaToTensor(rgba, size, k, spec, out) {
  const big = size * k;
  const plane = size * size;
  const scale = (spec.high - spec.low) / 255;
  const count = k * k;
  const half = count / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < k; dy++) {
        let p = ((y * k + dy) * big + x * k) * 4;
        for (let dx = 0; dx < k; dx++, p += 4) {
          r += rgba[p];
          g += rgba[p + 1];
          b += rgba[p + 2];
        }
      }
      if (k > 1) {
        r = Math.floor((r + half) / count);
        g = Math.floor((g + half) / count);
        b = Math.floor((b + half) / count);
      }
      const c0 = (spec.swap ? b : r) * scale + spec.low;
      const c1 = g * scale + spec.low;
      const c2 = (spec.swap ? r : b) * scale + spec.low;
      const i = y * size + x;
      if (spec.nchw) {
        out[i] = c0;
        out[plane + i] = c1;
        out[2 * plane + i] = c2;
      } else {
        out[3 * i] = c0;
        out[3 * i + 1] = c1;
        out[3 * i + 2] = c2;
      }
    }
  }
  return out;
}

/** Width and height of an output tensor [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC). */
export function outputSize(dims, spec) {
  return spec.nchw ? { width: dims[3], height: dims[2] } : { width: dims[2], height: dims[1] };
}

/**
 * Model output -> RGBA pixels (into `rgba`, length 4*W*H); returns the picture's mean
 * Rec. 709 luma on [0, 1] (the simulator's mean_luminance, at the model's resolution).
 */
export function tensorToRgba(data, dims, spec, rgba) {
  const { width, height } = outputSize(dims, spec);
  const plane = width * height;
  const alpha = 255 / (spec.high - spec.low);
  const level = (v) => {
    const clipped = v < spec.low ? spec.low : v > spec.high ? spec.high : v;
    return Math.round((clipped - spec.low) * alpha);
  };
  let luma = 0;
  for (let i = 0; i < plane; i++) {
    let c0;
    let c1;
    let c2;
    if (spec.nchw) {
      c0 = level(data[i]);
      c1 = level(data[plane + i]);
      c2 = level(data[2 * plane + i]);
    } else {
      c0 = level(data[3 * i]);
      c1 = level(data[3 * i + 1]);
      c2 = level(data[3 * i + 2]);
    }
    const r = spec.swap ? c2 : c0;
    const b = spec.swap ? c0 : c2;
    const p = 4 * i;
    rgba[p] = r;
    rgba[p + 1] = c1;
    rgba[p + 2] = b;
    rgba[p + 3] = 255;
    luma += REC709[0] * r + REC709[1] * c1 + REC709[2] * b;
  }
  return luma / (255 * plane);
}
