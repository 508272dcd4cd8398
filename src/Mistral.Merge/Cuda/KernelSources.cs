using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The CUDA C++ kernel sources embedded in this assembly (Cuda/Kernels/*.cu, *.cuh). NVRTC compiles them as one
/// translation unit: common.cuh first, then the .cu files in name order.
/// </summary>
public static partial class KernelSources
{
    private const string Prefix = "Mistral.Merge.Cuda.Kernels.";
    public const string ProgramName = "mistral_merge_kernels.cu";

    private static readonly Lazy<IReadOnlyList<(string Name, string Text)>> LoadedFiles = new(Load);

    /// <summary>File name → text, in compilation order.</summary>
    public static IReadOnlyList<(string Name, string Text)> Files => LoadedFiles.Value;

    public static string Combined()
    {
        var sb = new StringBuilder();
        foreach (var (name, text) in Files)
        {
            sb.Append("// ---- ").Append(name).Append(" ----\n");
            sb.Append(text.Replace("\r\n", "\n"));
            if (!text.EndsWith('\n')) sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Names of the extern "C" __global__ functions defined in <paramref name="source"/>.</summary>
    public static IReadOnlyList<string> EntryPoints(string source)
    {
        var list = new List<string>();
        foreach (Match m in EntryRegex().Matches(source)) list.Add(m.Groups[1].Value);
        return list;
    }

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(")]
    private static partial Regex EntryRegex();

    private static List<(string, string)> Load()
    {
        var asm = typeof(KernelSources).Assembly;
        var names = asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)).ToList();
        var files = new List<(string, string)>();
        foreach (var res in names.OrderBy(n => n.EndsWith(".cuh", StringComparison.Ordinal) ? 0 : 1).ThenBy(n => n, StringComparer.Ordinal))
        {
            using var s = asm.GetManifestResourceStream(res) ?? throw new InvalidOperationException("missing resource " + res);
            using var r = new StreamReader(s, Encoding.UTF8);
            files.Add((res[Prefix.Length..], r.ReadToEnd()));
        }
        if (files.Count == 0) throw new InvalidOperationException("no embedded CUDA kernel sources in " + asm.GetName().Name);
        return files;
    }
}
