// pad3d: pad (D, H, W) of a row-contiguous NCDHW array in one pass.
//
// Inputs:
//   x       (N, C, D, H, W) of T; the body reads its shape from x_shape.
//   params  int32[6]: low pad of D, H, W (negative crops, constant mode only),
//           then the padded sizes OD, OH, OW.
//   value   float32[1]: the fill of 'constant' mode (ignored otherwise).
// Output:
//   out     (N, C, OD, OH, OW) of T.
// Template parameters:
//   T     element type: float, float16_t or bfloat16_t.
//   MODE  0 constant, 1 reflect, 2 replicate, 3 circular.  The launcher gives
//         each mode its own kernel name as well (pad3d_<mode>).
// Grid: (OW, OH, N*C*OD) threads, one per output element, so x and y need no
//   division; z is split into (n*C + c, od).
// Every index fits in int: the dispatcher sends arrays of 2**31 or more
// elements to the portable path.

const int ow = int(thread_position_in_grid.x);
const int oh = int(thread_position_in_grid.y);
const int z = int(thread_position_in_grid.z);
const int OD = params[3];
const int OH = params[4];
const int OW = params[5];
if (ow >= OW || oh >= OH) {
  return;
}
const int od = z % OD;
const int nc = z / OD;
const int size[3] = {x_shape[2], x_shape[3], x_shape[4]};
int src[3] = {od - params[0], oh - params[1], ow - params[2]};
bool inside = true;
for (int a = 0; a < 3; ++a) {
  const int m = size[a];
  int v = src[a];
  if (MODE == 0) {
    inside = inside && v >= 0 && v < m;
  } else if (MODE == 1) {
    // The caller guarantees pads < m, so one mirror is enough.
    v = v < 0 ? -v : v;
    v = v >= m ? 2 * (m - 1) - v : v;
  } else if (MODE == 2) {
    v = v < 0 ? 0 : (v >= m ? m - 1 : v);
  } else {
    v = v % m;
    v = v < 0 ? v + m : v;
  }
  src[a] = v;
}
const int dst = (z * OH + oh) * OW + ow;
if (inside) {
  out[dst] = x[((nc * size[0] + src[0]) * size[1] + src[1]) * size[2] + src[2]];
} else {
  out[dst] = static_cast<T>(value[0]);
}
