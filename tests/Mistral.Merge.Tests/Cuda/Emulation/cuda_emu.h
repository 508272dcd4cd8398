// cuda_emu.h: runs the project's CUDA kernels on the CPU, for tests only (KernelEmulationTests).
// Every CUDA thread of a block is a fiber (ucontext) on one OS thread, switched cooperatively: __syncthreads and the
// two halves of a warp shuffle are barriers that yield until every thread (of the block / warp) has arrived.
// Blocks run one after another, so `static` stands in for __shared__. This checks the kernels' logic (indexing,
// masking, reductions, online softmax, routing) — not their speed, not the GPU's arithmetic (no FMA contraction
// here unless written as fmaf), and not NVRTC.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <csetjmp>
#include <ucontext.h>

struct dim3e { unsigned x = 1, y = 1, z = 1; };
inline dim3e threadIdx, blockIdx, blockDim, gridDim;   // one OS thread: the scheduler sets threadIdx on every switch

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define EMU_EXTERN_SHARED extern
#define __launch_bounds__(...)

float smem[1 << 16];   // dynamic shared memory (extern __shared__ float smem[])

namespace emu
{
    // Fibers start with makecontext/setcontext; after that, switches use _setjmp/_longjmp, which (unlike
    // swapcontext) make no signal-mask system call. Build with -U_FORTIFY_SOURCE (longjmp across stacks).
    inline jmp_buf sched;
    struct Jmp { jmp_buf b; };
    inline std::vector<Jmp> fiber;
    inline std::vector<char> started;
    inline std::vector<ucontext_t> ctx;
    inline std::vector<std::vector<char>> stacks;
    inline std::vector<char> done;
    inline unsigned cur = 0, nthreads = 0;
    inline std::function<void()> body;
    inline unsigned blockCount = 0, blockGen = 0;
    inline unsigned warpCount[32], warpGen[32];
    inline float shfl[32][32];

    inline void yield() { if (!_setjmp(fiber[cur].b)) _longjmp(sched, 1); }
    inline void entry() { body(); done[cur] = 1; _longjmp(sched, 1); }

    inline void barrier(unsigned& count, unsigned& gen, unsigned size)
    {
        unsigned g = gen;
        if (++count == size) { count = 0; gen++; return; }
        while (gen == g) yield();
    }
}

inline void __syncthreads() { emu::barrier(emu::blockCount, emu::blockGen, emu::nthreads); }

inline float shfl_impl(float v, int srcLane)
{
    unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32, size = std::min(32u, emu::nthreads - warp * 32);
    emu::shfl[warp][lane] = v;
    emu::barrier(emu::warpCount[warp], emu::warpGen[warp], size);
    float r = emu::shfl[warp][srcLane & 31];
    emu::barrier(emu::warpCount[warp], emu::warpGen[warp], size);
    return r;
}
inline float __shfl_xor_sync(unsigned, float v, int o, int = 32) { return shfl_impl(v, (threadIdx.x % 32) ^ o); }
inline float __shfl_sync(unsigned, float v, int src, int = 32) { return shfl_impl(v, src); }

inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

template <class F>
void launch(dim3e grid, dim3e block, F kernel)
{
    using namespace emu;
    blockDim = block;
    gridDim = grid;
    nthreads = block.x * block.y * block.z;
    body = kernel;
    ctx.assign(nthreads, ucontext_t{});
    fiber.resize(nthreads);
    stacks.resize(nthreads);
    for (auto& st : stacks) st.resize(256 * 1024);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++)
            {
                blockIdx = {x, y, z};
                blockCount = 0;
                std::fill(std::begin(warpCount), std::end(warpCount), 0u);
                done.assign(nthreads, 0);
                started.assign(nthreads, 0);
                for (unsigned t = 0; t < nthreads; t++)
                {
                    getcontext(&ctx[t]);
                    ctx[t].uc_stack.ss_sp = stacks[t].data();
                    ctx[t].uc_stack.ss_size = stacks[t].size();
                    ctx[t].uc_link = nullptr;
                    makecontext(&ctx[t], entry, 0);
                }
                for (bool any = true; any;)
                {
                    any = false;
                    for (unsigned t = 0; t < nthreads; t++)
                    {
                        if (done[t]) continue;
                        any = true;
                        cur = t;
                        threadIdx = {t, 0, 0};
                        if (!_setjmp(sched))
                        {
                            if (!started[t]) { started[t] = 1; setcontext(&ctx[t]); }
                            _longjmp(fiber[t].b, 1);
                        }
                    }
                }
            }
}
