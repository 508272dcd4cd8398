using Mistral.Merge.Inference;
using Mistral.Merge.Numerics;
using Mistral.Merge.Tests.Inference;

namespace Mistral.Merge.Tests.Numerics;

public class CpuTopologyTests
{
    /// <summary>A sysfs cpu folder: CPU i on the (package, core) given.</summary>
    private static string FakeSysfs(TempDir dir, params (int Package, int Core)[] cpus)
    {
        for (int i = 0; i < cpus.Length; i++)
        {
            string topology = Path.Combine(dir.Path, "cpu" + i, "topology");
            Directory.CreateDirectory(topology);
            File.WriteAllText(Path.Combine(topology, "core_id"), cpus[i].Core + "\n");
            File.WriteAllText(Path.Combine(topology, "physical_package_id"), cpus[i].Package + "\n");
        }
        return dir.Path;
    }

    [Theory]
    [InlineData("0-7", 16, 4)]   // 4 cores with 2 SMT siblings each (Linux numbers siblings n and n + 4)
    [InlineData("0-3", 16, 4)]   // one thread of each core
    [InlineData("0,4", 16, 1)]   // two siblings of one core
    [InlineData("0-1,4-5", 16, 2)]
    [InlineData("0-7", 3, 3)]    // a cgroup quota below the core count caps it
    public void PhysicalCoresCountsEachAllowedCoreOnce(string allowed, int processorCount, int expected)
    {
        using var dir = new TempDir();
        string sys = FakeSysfs(dir, (0, 0), (0, 1), (0, 2), (0, 3), (0, 0), (0, 1), (0, 2), (0, 3));
        Assert.Equal(expected, CpuTopology.PhysicalCores(sys, allowed, processorCount));
    }

    [Fact]
    public void CoresOfTwoPackagesWithTheSameCoreIdAreDifferentCores()
    {
        using var dir = new TempDir();
        string sys = FakeSysfs(dir, (0, 0), (0, 1), (1, 0), (1, 1));
        Assert.Equal(4, CpuTopology.PhysicalCores(sys, "0-3", 4));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("0-x")]
    [InlineData("3-1")]
    [InlineData("0-9")]          // CPUs 2..9 have no topology folder
    public void AnUnreadableTopologyFallsBackToEveryLogicalProcessor(string? allowed)
    {
        using var dir = new TempDir();
        string sys = FakeSysfs(dir, (0, 0), (0, 0));
        Assert.Equal(6, CpuTopology.PhysicalCores(sys, allowed, 6));
    }

    [Fact]
    public void CpuListsExpandRangesAndSingles()
    {
        Assert.Equal(new[] { 0, 1, 2, 3, 8, 10, 11 }, CpuTopology.ParseList(" 0-3,8,10-11\n"));
        Assert.Null(CpuTopology.ParseList("1,,2"));
        Assert.Null(CpuTopology.ParseList("1-2-3"));
    }

    [Fact]
    public void TheForwardPassRunsOneThreadPerPhysicalCoreByDefault()
    {
        int cores = CpuTopology.PhysicalCoreCount;
        Assert.InRange(cores, 1, Environment.ProcessorCount);
        using var dir = new TempDir();
        new TinyModel().Init(3).Write(dir["tiny"]);
        using var model = TransformerModel.Load(dir["tiny"]);
        using (var cpu = new CpuBackend(model)) Assert.Equal($"cpu ({cores} threads)", cpu.Name);
        using (var cpu = new CpuBackend(model, threads: 3)) Assert.Equal("cpu (3 threads)", cpu.Name);
    }
}
