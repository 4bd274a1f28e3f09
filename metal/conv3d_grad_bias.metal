// conv3d_grad_bias: dL/dbias of a conv3d, the per-channel sum of gy.
//
// Like the weight gradient this is a split reduction (see
// grouped_conv3d_grad_weight.metal for the counting): C channels alone are
// too few threads, so each channel's N*OD*OH*OW values are cut into R chunks
// of (n, od, oh) rows, one thread per (chunk, channel) writes a float
// partial sum, and the launcher adds the R partials.  No atomics.
//
// Inputs:
//   gy      (N, C, OD, OH, OW) of T; shape read from gy_shape.
//   params  int32[1]: R.
// Output:
//   partial (R, C) of float.
// Template parameters: none.  gy's element type (float, float16_t or
//   bfloat16_t) comes from the input MLX declares; sums run in float.
// Grid: (C, R, 1) threads: x is the channel, y the chunk.

const int c = int(thread_position_in_grid.x);
const int r = int(thread_position_in_grid.y);
const int N = gy_shape[0];
const int C = gy_shape[1];
const int OD = gy_shape[2];
const int OH = gy_shape[3];
const int OW = gy_shape[4];
const int R = params[0];
if (c >= C) {
  return;
}
const int rows = N * OD * OH;
const int per_chunk = (rows + R - 1) / R;
const int row_end = (r + 1) * per_chunk < rows ? (r + 1) * per_chunk : rows;
float acc = 0.0f;
for (int row = r * per_chunk; row < row_end; ++row) {
  const int oh = row % OH;
  const int od = (row / OH) % OD;
  const int n = row / (OH * OD);
  const int base = (((n * C + c) * OD + od) * OH + oh) * OW;
  for (int ow = 0; ow < OW; ++ow) {
    acc += static_cast<float>(gy[base + ow]);
  }
}
partial[r * C + c] = acc;
