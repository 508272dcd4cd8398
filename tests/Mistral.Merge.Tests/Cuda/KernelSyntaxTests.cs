using System.Diagnostics;
using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>Runs when a clang with the CUDA front end is installed (no CUDA toolkit needed); skipped otherwise.</summary>
public sealed class ClangCudaFactAttribute : FactAttribute
{
    public static readonly string? Clang = new[] { "clang-14", "clang-15", "clang-16", "clang-17", "clang-18", "clang" }
        .Select(Find).FirstOrDefault(p => p != null);

    private static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    public ClangCudaFactAttribute()
    {
        if (Clang == null) Skip = "no clang on PATH: the CUDA kernel syntax check needs clang's CUDA front end";
    }
}

public class KernelSyntaxTests
{
    /// <summary>
    /// Compiles the exact NVRTC translation unit to PTX for sm_80 with clang (-Wall -Wextra -Werror): catches
    /// syntax and type errors, unused or sign-mismatched code, and checks every entry point is emitted.
    /// This is NOT NVRTC: it cannot prove NVRTC accepts the code, nor that it runs correctly.
    /// </summary>
    [ClangCudaFact]
    public void KernelsCompileWithClangCudaFrontEnd()
    {
        using var dir = new TempDir();
        string src = dir["kernels.cu"], ptx = dir["kernels.ptx"];
        File.WriteAllText(src, KernelSources.Combined());
        string prelude = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Cuda", "clang_cuda_prelude.h");
        var psi = new ProcessStartInfo(ClangCudaFactAttribute.Clang!)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in new[] { "-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
                     "-Wall", "-Wextra", "-Werror", "-O1", "-S", "-include", prelude, "-o", ptx, src })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "clang timed out");
        Assert.True(p.ExitCode == 0, "clang rejected the kernels:\n" + err);
        string text = File.ReadAllText(ptx);
        foreach (var entry in CudaKernels.EntryPoints)
            Assert.Contains(".entry " + entry + "(", text);
    }
}
