using System.Diagnostics;
using System.Reflection;
using Mistral.Merge.Tests.Cuda;

namespace Mistral.Merge.Benchmarks.Cuda;

/// <summary>
/// Runs every test method marked [GpuFact] / [GpuFixtureFact] in Mistral.Merge.Tests directly (they are plain
/// methods whose Assert calls throw), for GPU machines that can run a self-contained build but have no .NET SDK
/// for `dotnet test`. Prints one line per test and exits non-zero when any fails or is skipped.
/// </summary>
public static class GpuValidation
{
    public static int Run(string[] args)
    {
        string? filter = args.Length > 0 ? args[0] : null;
        var tests = typeof(GpuFactAttribute).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Select(m => (t, m)))
            .Where(x => x.m.GetCustomAttributes().Any(a => a is GpuFactAttribute or GpuFixtureFactAttribute))
            .Where(x => filter == null || (x.t.Name + "." + x.m.Name).Contains(filter, StringComparison.OrdinalIgnoreCase))
            .ToList();
        int failed = 0, skipped = 0;
        foreach (var (type, method) in tests)
        {
            var attr = (Xunit.FactAttribute)method.GetCustomAttributes().First(a => a is GpuFactAttribute or GpuFixtureFactAttribute);
            string name = type.Name + "." + method.Name;
            if (attr.Skip != null) { skipped++; Console.WriteLine($"SKIP {name}: {attr.Skip}"); continue; }
            var sw = Stopwatch.StartNew();
            try
            {
                method.Invoke(Activator.CreateInstance(type), null);
                Console.WriteLine($"PASS {name} ({sw.Elapsed.TotalSeconds:F1} s)");
            }
            catch (TargetInvocationException e)
            {
                failed++;
                Console.WriteLine($"FAIL {name} ({sw.Elapsed.TotalSeconds:F1} s): {e.InnerException?.GetType().Name}: {e.InnerException?.Message}");
            }
        }
        Console.WriteLine($"{tests.Count} GPU tests: {tests.Count - failed - skipped} passed, {failed} failed, {skipped} skipped");
        return failed > 0 || skipped > 0 ? 1 : 0;
    }
}
