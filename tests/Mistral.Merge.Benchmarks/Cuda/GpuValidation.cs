using System.Reflection;
using Mistral.Merge.Tests.Cuda;

namespace Mistral.Merge.Benchmarks.Cuda;

/// <summary>
/// Runs every test method marked [GpuFact] / [GpuFixtureFact] in Mistral.Merge.Tests directly (<see cref="DirectTests"/>),
/// for GPU machines that can run a self-contained build but have no .NET SDK for `dotnet test`. Prints one line per
/// test and exits non-zero when any fails or is skipped.
/// </summary>
public static class GpuValidation
{
    public static int Run(string[] args) => DirectTests.Run(
        m => m.GetCustomAttributes().FirstOrDefault(a => a is GpuFactAttribute or GpuFixtureFactAttribute) as Xunit.FactAttribute,
        args, everyTest: true, skipIsFailure: true);
}
