using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Xunit;
using Xunit.Sdk;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Runs test methods of Mistral.Merge.Tests without a test runner, for machines where `dotnet test` cannot run:
/// a GPU machine without the .NET SDK (<c>cuda-validate</c>) and ARM64 under qemu-user emulation
/// (the <c>tests</c> command, tests/arm64/run.sh). [Fact]s, and [Theory]s with the rows of their data attributes
/// (InlineData, MemberData), each on a new instance of its class, disposed after; an attribute's Skip skips it.
/// One line per failure (per test with <c>everyTest</c>), a summary, and exit code 1 when any test failed.
/// </summary>
public static class DirectTests
{
    /// <param name="select">the tests to run: a method's fact attribute, or null to leave it out</param>
    /// <param name="filters">substrings of "Namespace.Class.Method" (any one matches; none = all)</param>
    public static int Run(Func<MethodInfo, FactAttribute?> select, IReadOnlyList<string> filters, bool everyTest, bool skipIsFailure)
    {
        var tests = typeof(Tests.CliRunner).Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.IsPublic)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static).Select(m => (Type: t, Method: m, Fact: select(m))))
            .Where(x => x.Fact != null && (filters.Count == 0 || filters.Any(f => $"{x.Type.FullName}.{x.Method.Name}".Contains(f, StringComparison.OrdinalIgnoreCase))))
            .OrderBy(x => x.Type.FullName, StringComparer.Ordinal).ThenBy(x => x.Method.Name, StringComparer.Ordinal)
            .ToList();
        int passed = 0, failed = 0, skipped = 0;
        var all = Stopwatch.StartNew();
        foreach (var (type, method, fact) in tests)
        {
            string name = type.Name + "." + method.Name;
            if (fact!.Skip != null) { skipped++; if (everyTest) Console.WriteLine($"SKIP {name}: {fact.Skip}"); continue; }
            foreach (var row in Rows(method, fact))
            {
                string label = row.Length == 0 ? name : $"{name}({string.Join(", ", row.Select(v => v?.ToString() ?? "null"))})";
                var sw = Stopwatch.StartNew();
                object? instance = null;
                try
                {
                    var args = Arguments(method, row);
                    instance = method.IsStatic ? null : Activator.CreateInstance(type);
                    if (method.Invoke(instance, args) is Task task) task.GetAwaiter().GetResult();
                    passed++;
                    if (everyTest) Console.WriteLine($"PASS {label} ({sw.Elapsed.TotalSeconds:F1} s)");
                }
                catch (Exception e)
                {
                    var inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
                    failed++;
                    Console.WriteLine($"FAIL {label} ({sw.Elapsed.TotalSeconds:F1} s): {inner.GetType().Name}: {inner.Message.ReplaceLineEndings(" / ")}");
                }
                finally { (instance as IDisposable)?.Dispose(); }
            }
        }
        Console.WriteLine($"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} ({MachinePeak.InstructionSet}): {passed} passed, {failed} failed, {skipped} skipped ({all.Elapsed.TotalSeconds:F0} s)");
        return failed > 0 || skipIsFailure && skipped > 0 ? 1 : 0;
    }

    /// <summary>A theory's data rows (a null row is InlineData(null): one null argument); a fact's one empty row.</summary>
    private static IEnumerable<object?[]> Rows(MethodInfo method, FactAttribute fact) =>
        fact is TheoryAttribute
            ? method.GetCustomAttributes<DataAttribute>(true).SelectMany(d => d.GetData(method)).Select(r => r ?? [null])
            : [[]];

    /// <summary>The row converted to the parameter types as xunit does for the cases this suite uses (numbers, enums, defaults).</summary>
    private static object?[] Arguments(MethodInfo method, object?[] row)
    {
        var ps = method.GetParameters();
        var args = new object?[ps.Length];
        for (int i = 0; i < ps.Length; i++)
        {
            object? v = i < row.Length ? row[i] : ps[i].DefaultValue;
            var type = Nullable.GetUnderlyingType(ps[i].ParameterType) ?? ps[i].ParameterType;
            if (v != null && !type.IsInstanceOfType(v) && v is IConvertible)
                v = type.IsEnum ? Enum.ToObject(type, v) : Convert.ChangeType(v, type, CultureInfo.InvariantCulture);
            args[i] = v;
        }
        return args;
    }
}
