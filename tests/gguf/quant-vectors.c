// Test-vector generator for mistral-merge's Q8_0 / Q4_0 / f16 / bf16 encoders (tests/Mistral.Merge.Tests/Gguf/).
// It calls llama.cpp's own reference functions from the prebuilt libggml-base.so that node-llama-cpp ships
// (node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/, llama.cpp release recorded in generate-vectors.sh):
// quantize_row_q8_0_ref, quantize_row_q4_0_ref (ggml-quants.c), ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref.
// No llama.cpp code is copied here; the library is loaded with dlopen. Prints JSON on stdout.
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*quant_fn)(const float *, void *, int64_t);
typedef void (*fp16_fn)(const float *, uint16_t *, int64_t);

#define N 32
#define BLOCKS 12

static uint32_t state = 12345u;
static float next_uniform(void) { state = state * 1664525u + 1013904223u; return (float)(state >> 8) / 16777216.0f; }

static void fill(float *x, int b) {
    for (int j = 0; j < N; j++) {
        switch (b) {
            case 0: x[j] = 0.0f; break;                                  // all zero: d = 0, id = 0
            case 1: x[j] = (float)(j - 16) / 16.0f; break;               // exact steps, ties at .5 of the scale
            case 2: x[j] = (float)(j - 16) * 0.125f + (j == 5 ? -3.0f : 0.0f); break; // negative extreme
            case 3: x[j] = (j % 2 ? 1.0f : -1.0f) * (float)j * 1e-3f; break;
            case 4: x[j] = j == 31 ? 7.0f : (float)j * 0.25f - 4.0f; break;   // positive max last, q4 clamps 16 -> 15
            case 5: x[j] = (j == 0 ? -1.0f : 1.0f) * 0.5f; break;            // max magnitude first (q4 takes the first)
            case 6: x[j] = 1e-6f * (float)(j + 1); break;                    // subnormal fp16 scale
            case 7: x[j] = 70000.0f * (float)(j - 15) / 16.0f; break;        // large values
            case 8: x[j] = (float)(j - 16) * 127.0f / 16.0f / 127.0f; break;
            default: x[j] = (next_uniform() - 0.5f) * 0.2f; break;           // weight-like values
        }
    }
}

static void hex(const uint8_t *p, size_t n) { putchar('"'); for (size_t i = 0; i < n; i++) printf("%02x", p[i]); putchar('"'); }

int main(int argc, char **argv) {
    const char *lib = argc > 1 ? argv[1] : "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";
    void *h = dlopen(lib, RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    quant_fn q8 = (quant_fn)dlsym(h, "quantize_row_q8_0_ref");
    quant_fn q4 = (quant_fn)dlsym(h, "quantize_row_q4_0_ref");
    fp16_fn f16 = (fp16_fn)dlsym(h, "ggml_fp32_to_fp16_row");
    fp16_fn bf16 = (fp16_fn)dlsym(h, "ggml_fp32_to_bf16_row_ref");
    if (!q8 || !q4 || !f16 || !bf16) { fprintf(stderr, "missing symbol\n"); return 1; }
    printf("{\n \"source\": \"%s\",\n \"blocks\": [\n", lib);
    for (int b = 0; b < BLOCKS; b++) {
        float x[N]; uint8_t o8[34], o4[18]; uint16_t h16[N], hb[N];
        fill(x, b);
        q8(x, o8, N); q4(x, o4, N); f16(x, h16, N); bf16(x, hb, N);
        printf("  {\"input\": "); hex((const uint8_t *)x, sizeof x);
        printf(", \"q8_0\": "); hex(o8, sizeof o8);
        printf(", \"q4_0\": "); hex(o4, sizeof o4);
        printf(", \"f16\": "); hex((const uint8_t *)h16, sizeof h16);
        printf(", \"bf16\": "); hex((const uint8_t *)hb, sizeof hb);
        printf("}%s\n", b + 1 < BLOCKS ? "," : "");
    }
    printf(" ]\n}\n");
    return 0;
}
