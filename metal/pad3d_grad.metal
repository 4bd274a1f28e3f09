// pad3d_grad: the adjoint of pad3d, written as a gather (no atomics).
//
// Each input element sums the gradient of every padded position that copies
// it.  Along one axis those positions form at most three [start, end) ranges:
//   constant   {i + lo}                     (or none when cropped away)
//   replicate  one range, widened to the edge for the first and last index
//   reflect    i + lo and its mirrors lo - i and lo + 2(m-1) - i  (pads < m)
//   circular   i + lo - m, i + lo, i + lo + m                    (|pads| <= m)
// and the element's gradient is the sum over the boxes these ranges span.
//
// Inputs:
//   gy      (N, C, OD, OH, OW) of T, the gradient of pad3d's output; the
//           body reads its shape from gy_shape.
//   params  int32[6]: low pad of D, H, W, then the unpadded sizes D, H, W.
// Output:
//   gx      (N, C, D, H, W) of T.
// Template parameters:
//   T     element type: float, float16_t or bfloat16_t; sums run in float.
//   MODE  0 constant, 1 reflect, 2 replicate, 3 circular (kernel name
//         pad3d_grad_<mode>).
// Grid: (W, H, N*C*D) threads, one per input element; z is split into
//   (n*C + c, d).

const int iw = int(thread_position_in_grid.x);
const int ih = int(thread_position_in_grid.y);
const int z = int(thread_position_in_grid.z);
const int D = params[3];
const int H = params[4];
const int W = params[5];
if (iw >= W || ih >= H) {
  return;
}
const int id = z % D;
const int nc = z / D;
const int index[3] = {id, ih, iw};
const int size[3] = {D, H, W};
const int padded[3] = {gy_shape[2], gy_shape[3], gy_shape[4]};
int first[3][3];
int last[3][3];
int count[3];
for (int a = 0; a < 3; ++a) {
  const int lo = params[a];
  const int i = index[a];
  const int m = size[a];
  int s[3];
  int e[3];
  int c = 1;
  s[0] = i + lo;
  e[0] = i + lo + 1;
  if (MODE == 2) {
    s[0] = i == 0 ? 0 : s[0];
    e[0] = i == m - 1 ? padded[a] : e[0];
  } else if (MODE == 1) {
    if (i > 0) {
      s[c] = lo - i;
      e[c] = s[c] + 1;
      ++c;
    }
    if (i < m - 1) {
      s[c] = lo + 2 * (m - 1) - i;
      e[c] = s[c] + 1;
      ++c;
    }
  } else if (MODE == 3) {
    s[1] = i + lo - m;
    e[1] = s[1] + 1;
    s[2] = i + lo + m;
    e[2] = s[2] + 1;
    c = 3;
  }
  count[a] = 0;
  for (int k = 0; k < c; ++k) {
    const int b = s[k] < 0 ? 0 : s[k];
    const int f = e[k] > padded[a] ? padded[a] : e[k];
    if (b < f) {
      first[a][count[a]] = b;
      last[a][count[a]] = f;
      ++count[a];
    }
  }
}
float acc = 0.0f;
for (int p = 0; p < count[0]; ++p) {
  for (int od = first[0][p]; od < last[0][p]; ++od) {
    const int plane = nc * padded[0] + od;
    for (int q = 0; q < count[1]; ++q) {
      for (int oh = first[1][q]; oh < last[1][q]; ++oh) {
        const int row = (plane * padded[1] + oh) * padded[2];
        for (int r = 0; r < count[2]; ++r) {
          for (int ow = first[2][r]; ow < last[2][r]; ++ow) {
            acc += static_cast<float>(gy[row + ow]);
          }
        }
      }
    }
  }
}
gx[(z * H + ih) * W + iw] = static_cast<T>(acc);
