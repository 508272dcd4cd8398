// Test-only prelude for a clang syntax check of the kernels (KernelSyntaxTests). NVRTC provides all of this
// itself; clang without a CUDA installation (-nocudainc -nocudalib) needs the qualifiers, built-in variables and
// the device functions the kernels use declared by hand.
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __host__ __attribute__((host))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define CUDA_VERSION 12000
typedef __SIZE_TYPE__ size_t;
#include <__clang_cuda_builtin_vars.h>
#include <__clang_cuda_libdevice_declares.h>
#include <__clang_cuda_device_functions.h>
__device__ float __shfl_xor_sync(unsigned mask, float v, int lane, int width = 32);
__device__ float __shfl_sync(unsigned mask, float v, int lane, int width = 32);
__device__ float fmaxf(float, float);
__device__ float fmaf(float, float, float);
__device__ float sqrtf(float);
__device__ float expf(float);
__device__ float logf(float);
__device__ int min(int, int);
__device__ int max(int, int);
