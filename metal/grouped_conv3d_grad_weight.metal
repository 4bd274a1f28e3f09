// grouped_conv3d_grad_weight: dL/dw of grouped_conv3d as a split reduction.
//
// dw[co, c, kd, kh, kw] sums gy * x over every batch item and output
// position: N*OD*OH*OW products for each of C_out*(C_in/groups)*KD*KH*KW
// weights.  Counting the work for the depthwise layer this package targets
// (N=2, C=64, 32^3, k=3): 1,728 weights, each a sum of 65,536 products.
//   * Atomics (one thread per product, atomic add into dw) issue 113 M float
//     atomics onto 1,728 addresses -- ~65,000 colliding adds per address,
//     serialised by the memory system, and a result whose rounding depends
//     on scheduling.
//   * One thread per weight issues no atomics but only 1,728 threads, far
//     too few to fill a GPU, each looping 65,536 times.
//   * Chosen: each weight's sum is split into R chunks of (n, od, oh) rows.
//     One thread per (chunk, weight) writes a float partial sum; the
//     launcher adds the R partials with one mx.sum (R*1,728 floats, noise
//     next to the products).  The launcher picks R so that about 2**15
//     threads run (R = 19 here: 32,832 threads of ~3,500 products each).
//     Deterministic, no atomics, no threadgroup memory.
//
// Inputs:
//   gy      (N, C_out, OD, OH, OW) of T; shape read from gy_shape.
//   x       (N, C_in, D, H, W) of T; shape read from x_shape.
//   params  int32[17]: the 16 conv params of grouped_conv3d, then R.
// Output:
//   partial (R, C_out, C_in/groups * KD*KH*KW) of float; summing over the
//           first axis gives dw.
// Template parameters:
//   KD, KH, KW  kernel size.  No element-type parameter: the body only reads
//               gy and x (float, float16_t or bfloat16_t, as MLX declares
//               them from the inputs) and sums in float.
// Grid: (C_in/groups * KD*KH*KW, C_out, R) threads: x is the tap within an
//   output channel's filter, y the output channel, z the chunk.

const int tap = int(thread_position_in_grid.x);
const int co = int(thread_position_in_grid.y);
const int r = int(thread_position_in_grid.z);
const int C_in = x_shape[1];
const int D = x_shape[2];
const int H = x_shape[3];
const int W = x_shape[4];
const int N = gy_shape[0];
const int C_out = gy_shape[1];
const int OD = gy_shape[2];
const int OH = gy_shape[3];
const int OW = gy_shape[4];
const int groups = params[15];
const int R = params[16];
const int CG = C_in / groups;
const int taps = CG * KD * KH * KW;
if (tap >= taps || co >= C_out) {
  return;
}
const int kw = tap % KW;
const int kh = (tap / KW) % KH;
const int kd = (tap / (KW * KH)) % KD;
const int ci = (co / (C_out / groups)) * CG + tap / (KW * KH * KD);
const int rows = N * OD * OH;
const int per_chunk = (rows + R - 1) / R;
const int row_end = (r + 1) * per_chunk < rows ? (r + 1) * per_chunk : rows;
float acc = 0.0f;
for (int row = r * per_chunk; row < row_end; ++row) {
  const int oh = row % OH;
  const int od = (row / OH) % OD;
  const int n = row / (OH * OD);
  const int id = od * params[0] - params[6] + kd * params[3];
  const int ih = oh * params[1] - params[7] + kh * params[4];
  if (id < 0 || id >= D || ih < 0 || ih >= H) {
    continue;
  }
  const int grow = (((n * C_out + co) * OD + od) * OH + oh) * OW;
  const int xrow = (((n * C_in + ci) * D + id) * H + ih) * W;
  for (int ow = 0; ow < OW; ++ow) {
    const int iw = ow * params[2] - params[8] + kw * params[5];
    if (iw >= 0 && iw < W) {
      acc += static_cast<float>(gy[grow + ow]) * static_cast<float>(x[xrow + iw]);
    }
  }
}
partial[(r * C_out + co) * taps + tap] = acc;
