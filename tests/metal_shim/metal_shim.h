// metal_shim.h: just enough of the Metal Shading Language for g++ to compile
// the kernels MLX generates from lucid_mlx's metal/*.metal bodies.
//
// The harness (harness.py) compiles the exact source MLX would hand to the
// Metal compiler -- signature, body and explicit instantiation -- with this
// header force-included, then calls the kernel once per thread of the grid.
//
// What is emulated:
//   * address-space qualifiers `device`, `constant`, `thread`: erased, since
//     the CPU has one flat address space;
//   * the `[[kernel]]`, `[[buffer(i)]]`, `[[thread_position_in_grid]]`,
//     `[[host_name(...)]]` attributes: ignored (-Wno-attributes);
//   * `uint`, `uint3` (the built-in argument types MLX declares);
//   * `half`/`float16_t` as _Float16 (IEEE binary16, as on the GPU);
//   * `bfloat16_t` as a struct converting to and from float with
//     round-to-nearest-even, as Metal's bfloat does;
//   * the few `metal::` math functions a kernel may call.
// `double` is poisoned at the end of this header (after the standard headers,
// which use it): Metal has none, so naming the type fails here as there.
// The address spaces, `std::`, `memcpy`, variable-length arrays and implicit
// float-to-bfloat stores still pass here; strict.py's clang check (see
// metal_strict.h) is the one that rejects them.
// What is deliberately not emulated: `threadgroup` memory and barriers.  The
// kernels use neither, and leaving `threadgroup` undefined makes any future
// use fail to compile here rather than run with the wrong semantics.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#define device
#define constant
#define thread

typedef unsigned int uint;

struct uint3 {
  uint x, y, z;
};

typedef _Float16 half;
typedef _Float16 float16_t;

struct bfloat16_t {
  uint16_t bits;
  bfloat16_t() = default;
  bfloat16_t(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = uint16_t((u >> 16) | 0x40u);  // keep NaN a (quiet) NaN
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
      bits = uint16_t(u >> 16);
    }
  }
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};

namespace metal {
using std::abs;
using std::max;
using std::min;
inline float fma(float a, float b, float c) { return std::fma(a, b, c); }
inline float exp(float a) { return std::exp(a); }
inline float sqrt(float a) { return std::sqrt(a); }
}  // namespace metal

#pragma GCC poison double
