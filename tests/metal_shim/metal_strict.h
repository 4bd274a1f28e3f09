// metal_strict.h: the Metal names lucid_mlx's generated kernels use, mapped
// onto C++ for OpenCL 2021 so that clang-19 checks them (see strict.py).
//
// Unlike metal_shim.h (g++, which erases address spaces so the kernels can
// run on the CPU), this header keeps Metal's rules that OpenCL shares:
//   * every pointer lives in an address space, and pointers of different
//     spaces do not convert: `device` is __global, `constant` __constant,
//     `threadgroup` __local, `thread` __private.  The generic address space
//     is switched off on the command line, so an unqualified pointer means
//     __private, as in Metal, and `const T* p = x;` on a device buffer fails;
//   * no double (fp64 switched off), no standard library (-cl-no-stdinc and
//     nothing declared here), no variable-length arrays;
//   * half (float16_t) and bfloat16_t are arithmetic types that convert to
//     float implicitly; float to bfloat16_t must be written as a conversion
//     (static_cast<T>), as lucid_mlx's bodies do.  The diagnostic behind it
//     also asks this of float to half, which is stricter than Metal needs.
// Declare nothing the kernels do not use: a Metal name missing here (say
// metal::fma) then fails loudly, and is added with the use.

#pragma once

#pragma OPENCL EXTENSION cl_khr_fp16 : enable

#define device __global
#define constant __constant
#define threadgroup __local
#define thread __private

// The built-in types MLX's generated signatures declare.
typedef unsigned int uint;
typedef uint uint3 __attribute__((ext_vector_type(3)));
typedef int int32_t;

// Metal's half, and MLX's bfloat16_t (`typedef bfloat bfloat16_t` in MLX 0.32's
// bf16.h: Metal's native bfloat, an arithmetic type like clang's __bf16).
typedef half float16_t;
typedef __bf16 bfloat16_t;
#pragma clang diagnostic error "-Wimplicit-float-conversion"
