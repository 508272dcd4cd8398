using System.Runtime.InteropServices;
using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>A fact about a machine without the NVIDIA driver; skipped with the reason where libcuda.so.1 loads.</summary>
public sealed class NoDriverFactAttribute : FactAttribute
{
    public NoDriverFactAttribute()
    {
        if (NativeLibrary.TryLoad("libcuda.so.1", out var h))
        {
            NativeLibrary.Free(h);
            Skip = "an NVIDIA driver (libcuda.so.1) is present: RealProbeNeverThrowsAndAgreesWithTheSelector covers this machine";
        }
    }
}

public class DeviceSelectorTests
{
    private static bool NoGpu(out CudaContext? ctx, out string why) { ctx = null; why = "libcuda.so.1 not found: no NVIDIA driver on this machine"; return false; }
    private static bool MustNotProbe(out CudaContext? ctx, out string why) => throw new InvalidOperationException("the probe must not run for --device cpu");

    [Fact]
    public void CpuNeverProbesTheDriver()
    {
        var sel = DeviceSelector.Resolve("cpu", MustNotProbe);
        Assert.Equal(ComputeDevice.Cpu, sel.Device);
        Assert.Null(sel.Context);
        Assert.Null(sel.Note);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("AUTO")]
    [InlineData(" auto ")]
    [InlineData(null)]
    public void AutoFallsBackToCpuWithTheReason(string? value)
    {
        var sel = DeviceSelector.Resolve(value, NoGpu);
        Assert.Equal(ComputeDevice.Cpu, sel.Device);
        Assert.Equal("CUDA not used: libcuda.so.1 not found: no NVIDIA driver on this machine", sel.Note);
    }

    [Fact]
    public void CudaWithoutAGpuIsAOneLineErrorWithTheReason()
    {
        var e = Assert.Throws<MergeException>(() => DeviceSelector.Resolve("cuda", NoGpu));
        Assert.Equal("--device cuda: CUDA is not usable here: libcuda.so.1 not found: no NVIDIA driver on this machine", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("cuda:1")]
    [InlineData("gpu0")]
    public void UnknownDeviceIsRejected(string value)
    {
        var e = Assert.Throws<MergeException>(() => DeviceSelector.Resolve(value, MustNotProbe));
        Assert.Equal($"--device {value}: unknown device (expected one of: auto, cpu, cuda)", e.Message);
    }

    /// <summary>The real probe on this machine: whatever it finds, TryOpen never throws and the selector agrees with it.</summary>
    [Fact]
    public void RealProbeNeverThrowsAndAgreesWithTheSelector()
    {
        bool ok = CudaRuntime.TryOpen(out var ctx, out var why);
        try
        {
            var auto = DeviceSelector.Resolve("auto");
            if (ok)
            {
                Assert.Equal(ComputeDevice.Cuda, auto.Device);
                auto.Context!.Dispose();
            }
            else
            {
                Assert.Null(ctx);
                Assert.False(string.IsNullOrWhiteSpace(why));
                Assert.DoesNotContain('\n', why);
                Assert.Equal(ComputeDevice.Cpu, auto.Device);
                Assert.Equal("CUDA not used: " + why, auto.Note);
                var e = Assert.Throws<MergeException>(() => DeviceSelector.Resolve("cuda"));
                Assert.Equal("--device cuda: CUDA is not usable here: " + why, e.Message);
                var e2 = Assert.Throws<MergeException>(() => CudaRuntime.Open());
                Assert.Equal(e.Message, e2.Message);
            }
        }
        finally { ctx?.Dispose(); }
    }

    [NoDriverFact]
    public void WithoutLibcudaTheReasonNamesTheMissingDriver()
    {
        Assert.False(CudaRuntime.TryOpen(out var ctx, out var why));
        Assert.Null(ctx);
        Assert.Equal("libcuda.so.1 not found: no NVIDIA driver on this machine", why);
    }
}
