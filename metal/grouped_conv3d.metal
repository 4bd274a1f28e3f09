// grouped_conv3d: grouped / depthwise 3-D convolution on NCDHW, no bias.
//
// Zero padding is a bounds check on each tap, so no padded copy of x exists.
//
// Inputs:
//   x       (N, C_in, D, H, W) of T; shape read from x_shape.
//   w       (C_out, C_in / groups, KD, KH, KW) of T; shape read from w_shape.
//   params  int32[16], shared by the three conv kernels:
//           stride (3), dilation (3), low zero pad (3), input D, H, W,
//           output OD, OH, OW, groups.
// Output:
//   y       (N, C_out, OD, OH, OW) of T.
// Template parameters:
//   T           element type: float, float16_t or bfloat16_t; products are
//               summed in float.
//   KD, KH, KW  kernel size, fixed at compile time so the tap loops unroll.
// Grid: (OW, OH, N*C_out*OD) threads, one per output element; z is split
//   into (n, co, od).  Output channel co belongs to group co / (C_out/groups)
//   and reads that group's C_in/groups input channels, as in PyTorch.

const int ow = int(thread_position_in_grid.x);
const int oh = int(thread_position_in_grid.y);
const int z = int(thread_position_in_grid.z);
const int OD = params[12];
const int OH = params[13];
const int OW = params[14];
if (ow >= OW || oh >= OH) {
  return;
}
const int C_in = x_shape[1];
const int D = x_shape[2];
const int H = x_shape[3];
const int W = x_shape[4];
const int C_out = w_shape[0];
const int CG = w_shape[1];
const int OG = C_out / params[15];
const int od = z % OD;
const int co = (z / OD) % C_out;
const int n = z / (OD * C_out);
const int d0 = od * params[0] - params[6];
const int h0 = oh * params[1] - params[7];
const int w0 = ow * params[2] - params[8];
const int ci0 = (co / OG) * CG;
float acc = 0.0f;
for (int c = 0; c < CG; ++c) {
  const int xc = (n * C_in + ci0 + c) * D;
  const int wc = (co * CG + c) * KD;
  for (int kd = 0; kd < KD; ++kd) {
    const int id = d0 + kd * params[3];
    if (id < 0 || id >= D) {
      continue;
    }
    for (int kh = 0; kh < KH; ++kh) {
      const int ih = h0 + kh * params[4];
      if (ih < 0 || ih >= H) {
        continue;
      }
      const int xrow = ((xc + id) * H + ih) * W;
      const int wrow = ((wc + kd) * KH + kh) * KW;
      for (int kw = 0; kw < KW; ++kw) {
        const int iw = w0 + kw * params[5];
        if (iw < 0 || iw >= W) {
          continue;
        }
        acc += static_cast<float>(x[xrow + iw]) * static_cast<float>(w[wrow + kw]);
      }
    }
  }
}
y[(z * OH + oh) * OW + ow] = static_cast<T>(acc);
