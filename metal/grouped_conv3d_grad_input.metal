// grouped_conv3d_grad_input: dL/dx of grouped_conv3d as a gather (no atomics).
//
// Input element (n, ci, id, ih, iw) was read by output (n, co, od, oh, ow)
// through tap (kd, kh, kw) exactly when od * stride - pad + kd * dilation
// == id (and likewise for h, w), with co in ci's group.  Each thread walks
// its taps, keeps those whose output position is a whole in-range multiple
// of the stride, and sums gy * w over the group's output channels.
//
// Inputs:
//   gy      (N, C_out, OD, OH, OW) of T; shape read from gy_shape.
//   w       (C_out, C_in / groups, KD, KH, KW) of T; shape read from w_shape.
//   params  int32[16]: stride (3), dilation (3), low zero pad (3), input
//           D, H, W, output OD, OH, OW, groups (as grouped_conv3d).
// Output:
//   gx      (N, C_in, D, H, W) of T.
// Template parameters:
//   T           element type; sums run in float.
//   KD, KH, KW  kernel size.
// Grid: (W, H, N*C_in*D) threads, one per input element; z is split into
//   (n, ci, id).

const int iw = int(thread_position_in_grid.x);
const int ih = int(thread_position_in_grid.y);
const int z = int(thread_position_in_grid.z);
const int D = params[9];
const int H = params[10];
const int W = params[11];
if (iw >= W || ih >= H) {
  return;
}
const int C_out = gy_shape[1];
const int OD = gy_shape[2];
const int OH = gy_shape[3];
const int OW = gy_shape[4];
const int CG = w_shape[1];
const int groups = params[15];
const int OG = C_out / groups;
const int C_in = CG * groups;
const int id = z % D;
const int ci = (z / D) % C_in;
const int n = z / (D * C_in);
const int cl = ci % CG;
const int co0 = (ci / CG) * OG;
float acc = 0.0f;
for (int kd = 0; kd < KD; ++kd) {
  const int td = id + params[6] - kd * params[3];
  if (td < 0 || td % params[0] != 0 || td / params[0] >= OD) {
    continue;
  }
  const int od = td / params[0];
  for (int kh = 0; kh < KH; ++kh) {
    const int th = ih + params[7] - kh * params[4];
    if (th < 0 || th % params[1] != 0 || th / params[1] >= OH) {
      continue;
    }
    const int oh = th / params[1];
    for (int kw = 0; kw < KW; ++kw) {
      const int tw = iw + params[8] - kw * params[5];
      if (tw < 0 || tw % params[2] != 0 || tw / params[2] >= OW) {
        continue;
      }
      const int ow = tw / params[2];
      for (int j = 0; j < OG; ++j) {
        const int co = co0 + j;
        const float g = static_cast<float>(gy[(((n * C_out + co) * OD + od) * OH + oh) * OW + ow]);
        const float k = static_cast<float>(w[(((co * CG + cl) * KD + kd) * KH + kh) * KW + kw]);
        acc += g * k;
      }
    }
  }
}
gx[(z * H + ih) * W + iw] = static_cast<T>(acc);
