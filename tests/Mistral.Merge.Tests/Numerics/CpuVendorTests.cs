using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Numerics;

public class CpuVendorTests
{
    [Fact]
    public void TheVendorIsTheOneLinuxReportsOrEmptyOffX86()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported)
        {
            Assert.Equal("", CpuVendor.Id);
            return;
        }
        Assert.Equal(12, CpuVendor.Id.Length);
        if (!File.Exists("/proc/cpuinfo")) return; // Linux only: elsewhere the length is all we can check
        string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal));
        Assert.NotNull(line);
        Assert.Equal(line.Split(':', 2)[1].Trim(), CpuVendor.Id);
    }
}
