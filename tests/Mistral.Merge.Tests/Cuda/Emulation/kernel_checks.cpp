// kernel_checks.cpp: runs every kernel of Cuda/Kernels on the CPU emulation (cuda_emu.h) and compares it with a
// straightforward float64 reference written here. Build: g++ -std=c++20 -O1 -pthread -ffp-contract=off
// -DKERNELS='"<kernels.cu>"' kernel_checks.cpp. Prints each failure; the last line is "ALL OK" or "FAILED n".
#include "cuda_emu.h"
#include KERNELS
#include <random>
#include <string>

static int failures = 0;
static void check(bool ok, const std::string& what)
{
    if (!ok) { failures++; std::printf("FAIL %s\n", what.c_str()); }
}
static void close(double got, double want, double tol, const std::string& what)
{
    if (!(std::fabs(got - want) <= tol)) { failures++; std::printf("FAIL %s: got %.9g want %.9g\n", what.c_str(), got, want); }
}
static std::mt19937 rng(12345);
static std::vector<float> randv(size_t n, float a = 1.0f)
{
    std::uniform_real_distribution<float> d(-a, a);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}
static uint16_t rne(float f)   // the fixture README's integer RNE (NaN handled separately)
{
    uint32_t u = __float_as_uint(f);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
static unsigned long long P(const void* p) { return (unsigned long long)(uintptr_t)p; }

static void conversions()
{
    float in[] = {1.0f, __uint_as_float(0x3F808000u), __uint_as_float(0x3F818000u), __uint_as_float(0x7F7FFFFFu), -0.0f,
                  INFINITY, -INFINITY, NAN, __uint_as_float(0xFFC12345u), 1e-40f, 3.14159265f};
    uint16_t want[] = {0x3F80, 0x3F80, 0x3F82, 0x7F80, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7FC0, rne(1e-40f), rne(3.14159265f)};
    const int n = 11;
    std::vector<bf16_t> out(n);
    launch({1}, {32}, [&] { f32_to_bf16_kernel(in, out.data(), n); });
    for (int i = 0; i < n; i++) check(out[i] == want[i], "f32_to_bf16[" + std::to_string(i) + "]");
    std::vector<float> back(n);
    launch({2}, {32}, [&] { bf16_to_f32_kernel(out.data(), back.data(), n); });
    for (int i = 0; i < n; i++) check(__float_as_uint(back[i]) == (uint32_t)out[i] << 16, "bf16_to_f32[" + std::to_string(i) + "]");
}

static void embed()
{
    int V = 7, h = 5;
    auto table = randv(V * h);
    std::vector<bf16_t> tb(V * h);
    for (int i = 0; i < V * h; i++) tb[i] = rne(table[i]);
    int tokens[] = {3, 0, 6, 3};
    std::vector<float> out(4 * h), outb(4 * h);
    launch({4}, {32}, [&] { embed_f32(tokens, table.data(), out.data(), h); });
    launch({4}, {32}, [&] { embed_bf16(tokens, tb.data(), outb.data(), h); });
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < h; i++)
        {
            check(out[t * h + i] == table[tokens[t] * h + i], "embed_f32");
            check(__float_as_uint(outb[t * h + i]) == (uint32_t)tb[tokens[t] * h + i] << 16, "embed_bf16");
        }
}

static void rmsnorm()
{
    int rows = 3, n = 300;
    auto x = randv(rows * n, 3.0f), w = randv(n);
    std::vector<float> y(rows * n);
    std::vector<bf16_t> yb(rows * n);
    launch({(unsigned)rows}, {256}, [&] { rmsnorm_f32(x.data(), w.data(), y.data(), n, 1e-5f); });
    launch({(unsigned)rows}, {256}, [&] { rmsnorm_bf16(x.data(), w.data(), yb.data(), n, 1e-5f); });
    for (int r = 0; r < rows; r++)
    {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
        double inv = 1 / std::sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++)
        {
            double want = w[i] * (x[r * n + i] * inv);
            close(y[r * n + i], want, 1e-5 * (1 + std::fabs(want)), "rmsnorm_f32");
            close(__uint_as_float((uint32_t)yb[r * n + i] << 16), want, std::fabs(want) / 128 + 1e-6, "rmsnorm_bf16");
        }
    }
}

static void rope()
{
    int H = 4, KVH = 2, D = 8, T = 3, pos0 = 5, maxPos = 16, half = D / 2;
    int row = (H + 2 * KVH) * D;
    auto qkv = randv(T * row);
    std::vector<float> cosT(maxPos * half), sinT(maxPos * half);
    for (int p = 0; p < maxPos; p++)
        for (int i = 0; i < half; i++)
        {
            double ang = p * std::pow(10000.0, -2.0 * i / D);
            cosT[p * half + i] = (float)std::cos(ang);
            sinT[p * half + i] = (float)std::sin(ang);
        }
    std::vector<float> q(T * H * D), kc(maxPos * KVH * D, -7.f), vc(maxPos * KVH * D, -7.f);
    launch({(unsigned)T}, {128}, [&] { rope_qkv_store(qkv.data(), q.data(), kc.data(), vc.data(), cosT.data(), sinT.data(), H, KVH, D, pos0); });
    for (int t = 0; t < T; t++)
    {
        int pos = pos0 + t;
        for (int h = 0; h < H + KVH; h++)
            for (int i = 0; i < half; i++)
            {
                double a = qkv[t * row + h * D + i], b = qkv[t * row + h * D + i + half];
                double c = cosT[pos * half + i], s = sinT[pos * half + i];
                const float* out = h < H ? &q[(t * H + h) * D] : &kc[(pos * KVH + h - H) * D];
                close(out[i], a * c - b * s, 1e-6, "rope lo");
                close(out[i + half], b * c + a * s, 1e-6, "rope hi");
            }
        for (int i = 0; i < KVH * D; i++) check(vc[pos * KVH * D + i] == qkv[t * row + (H + KVH) * D + i], "rope v copy");
    }
    check(kc[0] == -7.f && vc[(pos0 + T) * KVH * D] == -7.f, "rope writes only its positions");
}

// float64 reference attention for query position qpos over cache keys 0..qpos.
static std::vector<double> ref_attention(const float* q, const std::vector<float>& kc, const std::vector<float>& vc,
    int qpos, int h, int H, int KVH, int D, int window)
{
    int kv = h / (H / KVH);
    double scale = 1 / std::sqrt((double)D), mx = -INFINITY;
    std::vector<double> s(qpos + 1, -INFINITY), out(D, 0.0);
    for (int j = 0; j <= qpos; j++)
    {
        if (window > 0 && qpos - j >= window) continue;
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double)q[d] * kc[(j * KVH + kv) * D + d];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (int j = 0; j <= qpos; j++) { s[j] = std::isinf(s[j]) ? 0 : std::exp(s[j] - mx); sum += s[j]; }
    for (int j = 0; j <= qpos; j++)
        for (int d = 0; d < D; d++) out[d] += s[j] / sum * vc[(j * KVH + kv) * D + d];
    return out;
}

static void attention_prefill(int T, int pos0, int H, int KVH, int D, int window)
{
    int total = pos0 + T;
    auto kc = randv(total * KVH * D, 2.0f), vc = randv(total * KVH * D);
    auto q = randv(T * H * D, 2.0f);
    std::vector<float> out(T * H * D, NAN);
    std::vector<bf16_t> outb(T * H * D);
    float scale = (float)(1 / std::sqrt((double)D));
    dim3e grid{(unsigned)((T + 15) / 16), (unsigned)H};
    launch(grid, {128}, [&] { attn_prefill_f32(q.data(), kc.data(), vc.data(), out.data(), T, pos0, H, KVH, D, window, scale); });
    launch(grid, {128}, [&] { attn_prefill_bf16(q.data(), kc.data(), vc.data(), outb.data(), T, pos0, H, KVH, D, window, scale); });
    std::string tag = "prefill T=" + std::to_string(T) + " pos0=" + std::to_string(pos0) + " H=" + std::to_string(H) + " KVH=" + std::to_string(KVH) +
                      " D=" + std::to_string(D) + " W=" + std::to_string(window);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
        {
            auto want = ref_attention(&q[(t * H + h) * D], kc, vc, pos0 + t, h, H, KVH, D, window);
            for (int d = 0; d < D; d++)
            {
                close(out[(t * H + h) * D + d], want[d], 2e-5, tag);
                close(__uint_as_float((uint32_t)outb[(t * H + h) * D + d] << 16), want[d], std::fabs(want[d]) / 128 + 1e-6, tag + " bf16");
            }
        }
}

static void attention_decode(int pos, int H, int KVH, int D, int window)
{
    int total = pos + 1;
    auto kc = randv(total * KVH * D, 2.0f), vc = randv(total * KVH * D);
    auto q = randv(H * D, 2.0f);
    int visible = window > 0 ? std::min(window, pos + 1) : pos + 1;
    int splits = (visible + 255) / 256;
    std::vector<float> pm(H * splits), pl(H * splits), pacc(H * splits * D), out(H * D, NAN);
    float scale = (float)(1 / std::sqrt((double)D));
    launch({(unsigned)H, (unsigned)splits}, {128}, [&] {
        attn_decode_partial(q.data(), kc.data(), vc.data(), pm.data(), pl.data(), pacc.data(), pos, H, KVH, D, window, scale, 256); });
    launch({(unsigned)H}, {128}, [&] { attn_decode_combine_f32(pm.data(), pl.data(), pacc.data(), out.data(), D, splits); });
    std::string tag = "decode pos=" + std::to_string(pos) + " D=" + std::to_string(D) + " W=" + std::to_string(window);
    for (int h = 0; h < H; h++)
    {
        auto want = ref_attention(&q[h * D], kc, vc, pos, h, H, KVH, D, window);
        for (int d = 0; d < D; d++) close(out[h * D + d], want[d], 2e-5, tag);
    }
}

static void silu()
{
    int T = 3, I = 50;
    auto gu = randv(T * 2 * I, 4.0f);
    std::vector<float> act(T * I);
    launch({2}, {64}, [&] { silu_mul_f32(gu.data(), act.data(), T, I); });
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++)
        {
            double g = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
            close(act[t * I + i], g / (1 + std::exp(-g)) * u, 1e-6 * (1 + std::fabs(g * u)), "silu");
        }
}

static void logits()
{
    int T = 4, V = 1000;
    auto l = randv(T * V, 8.0f);
    l[1 * V + 17] = 50.f; l[1 * V + 900] = 50.f;   // a tie: the first index wins
    int targets[] = {5, 17, -1, 999};
    std::vector<float> nll(T);
    std::vector<int> ids(T);
    launch({(unsigned)T}, {256}, [&] { nll_rows(l.data(), targets, nll.data(), V); });
    launch({(unsigned)T}, {256}, [&] { argmax_rows(l.data(), ids.data(), V); });
    auto ls = l;
    launch({(unsigned)T}, {256}, [&] { log_softmax_rows(ls.data(), V); });
    for (int t = 0; t < T; t++)
    {
        double mx = -INFINITY, sum = 0;
        int best = 0;
        for (int i = 0; i < V; i++) { mx = std::max(mx, (double)l[t * V + i]); if (l[t * V + i] > l[t * V + best]) best = i; }
        for (int i = 0; i < V; i++) sum += std::exp(l[t * V + i] - mx);
        double lse = mx + std::log(sum);
        close(nll[t], targets[t] < 0 ? 0.0 : lse - l[t * V + targets[t]], 2e-5, "nll");
        check(ids[t] == best, "argmax row " + std::to_string(t));
        for (int i = 0; i < V; i += 97) close(ls[t * V + i], l[t * V + i] - lse, 2e-5, "log_softmax");
    }
    check(ids[1] == 17, "argmax tie goes to the first index");
}

static void moe()
{
    const int T = 13, E = 5, K = 2, h = 6;
    auto rl = randv(T * E, 3.0f);
    rl[4 * E + 1] = rl[4 * E + 3] = 9.f;   // a tie between experts 1 and 3: lower index first
    std::vector<int> ids(T * K), counts(E), offsets(E + 1), order(T * K), inverse(T * K);
    std::vector<float> w(T * K);
    launch({1}, {128}, [&] { moe_route_topk(rl.data(), ids.data(), w.data(), T, E, K, 0); });
    for (int t = 0; t < T; t++)
    {
        double mx = -INFINITY, sum = 0, p[E];
        for (int e = 0; e < E; e++) mx = std::max(mx, (double)rl[t * E + e]);
        for (int e = 0; e < E; e++) sum += p[e] = std::exp(rl[t * E + e] - mx);
        int idx[E] = {0, 1, 2, 3, 4};
        std::stable_sort(idx, idx + E, [&](int a, int b) { return p[a] > p[b]; });
        double ws = p[idx[0]] + p[idx[1]];
        for (int s = 0; s < K; s++)
        {
            check(ids[t * K + s] == idx[s], "route id t=" + std::to_string(t));
            close(w[t * K + s], p[idx[s]] / ws, 1e-6, "route weight");
        }
    }
    check(ids[4 * K] == 1 && ids[4 * K + 1] == 3, "route tie");
    std::vector<float> wb(T * K);
    std::vector<int> idsb(T * K);
    launch({1}, {128}, [&] { moe_route_topk(rl.data(), idsb.data(), wb.data(), T, E, K, 1); });
    for (int i = 0; i < T * K; i++) check(__float_as_uint(wb[i]) == (uint32_t)rne(w[i]) << 16, "route weight bf16-rounded");

    launch({1}, {32}, [&] { moe_group(ids.data(), counts.data(), offsets.data(), order.data(), inverse.data(), T, E, K); });
    int at = 0;
    for (int e = 0; e < E; e++)
    {
        check(offsets[e] == at, "group offset");
        for (int i = 0; i < T * K; i++)
            if (ids[i] == e) { check(order[at] == i, "group order"); check(inverse[i] == at, "group inverse"); at++; }
        check(counts[e] == at - offsets[e], "group count");
    }
    check(offsets[E] == T * K, "group total");

    auto x = randv(T * h);
    std::vector<float> g(T * K * h);
    launch({(unsigned)(T * K)}, {32}, [&] { moe_gather_f32(x.data(), order.data(), g.data(), h, K); });
    for (int r = 0; r < T * K; r++)
        for (int i = 0; i < h; i++) check(g[r * h + i] == x[(order[r] / K) * h + i], "gather");

    auto y = randv(T * K * h);
    auto res = randv(T * h);
    auto res0 = res;
    launch({(unsigned)T}, {32}, [&] { moe_combine(res.data(), y.data(), ids.data(), w.data(), inverse.data(), h, K); });
    for (int t = 0; t < T; t++)
    {
        int s0 = t * K, s1 = t * K + 1;
        if (ids[s1] < ids[s0]) std::swap(s0, s1);   // ascending expert order, as HF's loop over experts
        for (int i = 0; i < h; i++)
        {
            float acc = 0.f;
            acc = acc + y[inverse[s0] * h + i] * w[s0];
            acc = acc + y[inverse[s1] * h + i] * w[s1];
            check(res[t * h + i] == res0[t * h + i] + acc, "combine (bit-exact f32 order)");
        }
    }
}

int main()
{
    conversions();
    embed();
    rmsnorm();
    rope();
    attention_prefill(37, 0, 4, 2, 8, 0);     // GQA 2:1, several row tiles, partial last tile
    attention_prefill(17, 20, 4, 2, 40, 0);   // a later chunk over an existing cache, head_dim not a multiple of 32
    attention_prefill(40, 0, 2, 1, 64, 7);    // sliding window
    attention_prefill(9, 30, 4, 4, 16, 12);   // window + chunk offset
    attention_prefill(5, 0, 2, 2, 256, 0);    // head_dim 256 (dynamic shared memory > 48 KB)
    attention_decode(0, 2, 1, 32, 0);
    attention_decode(300, 4, 1, 64, 0);       // two key splits
    attention_decode(700, 2, 2, 40, 100);     // window inside one split
    attention_decode(600, 2, 1, 128, 300);    // window spanning two splits
    silu();
    logits();
    moe();
    if (failures == 0) std::printf("ALL OK\n");
    else std::printf("FAILED %d\n", failures);
    return failures == 0 ? 0 : 1;
}
