using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>
/// The GPU shared by the GPU tests, opened once per test process. <see cref="WhyNot"/> is the plain reason
/// when there is none (no driver, no device, no NVRTC/cuBLAS, compute capability below 8.0).
/// </summary>
public static class GpuTestContext
{
    private static readonly Lazy<(CudaContext? Ctx, string WhyNot)> State = new(() =>
        CudaRuntime.TryOpen(out var ctx, out var why) ? (ctx, "") : (null, why));

    public static bool Available => State.Value.Ctx != null;
    public static string WhyNot => State.Value.WhyNot;
    public static CudaContext Context => State.Value.Ctx ?? throw new InvalidOperationException("no GPU: " + WhyNot);
}

/// <summary>A fact that needs a usable CUDA device; skipped with the reason when there is none (CI has none).</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (!GpuTestContext.Available) Skip = "no usable CUDA device: " + GpuTestContext.WhyNot;
    }
}

/// <summary>A GPU fact that also needs ../shared/fixtures.</summary>
public sealed class GpuFixtureFactAttribute : FactAttribute
{
    public GpuFixtureFactAttribute()
    {
        if (!SharedFixtures.Available) Skip = SharedFixtures.SkipReason;
        else if (!GpuTestContext.Available) Skip = "no usable CUDA device: " + GpuTestContext.WhyNot;
    }
}

/// <summary>
/// A fact about the no-GPU path that also needs ../shared/fixtures; skipped with the reason on a machine with a
/// usable CUDA device (the GPU tests cover that path there).
/// </summary>
public sealed class NoGpuFixtureFactAttribute : FactAttribute
{
    public NoGpuFixtureFactAttribute()
    {
        if (!SharedFixtures.Available) Skip = SharedFixtures.SkipReason;
        else if (GpuTestContext.Available) Skip = "a usable CUDA device is present: this test covers the no-GPU path, the GPU tests cover this one";
    }
}
