using System.Diagnostics;
using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>Runs when g++ (C++20) is installed; skipped otherwise.</summary>
public sealed class GxxFactAttribute : FactAttribute
{
    public static readonly string? Gxx = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
        .Select(d => Path.Combine(d, "g++")).FirstOrDefault(File.Exists);

    public GxxFactAttribute()
    {
        if (Gxx == null) Skip = "no g++ on PATH: the CPU emulation of the CUDA kernels needs a C++20 compiler";
    }
}

public class KernelEmulationTests
{
    /// <summary>
    /// Executes the embedded kernels — the exact NVRTC source — on a CPU emulation of CUDA's execution model
    /// (Emulation/cuda_emu.h: one fiber per CUDA thread, real barriers for __syncthreads and warp shuffles) and
    /// compares every kernel with float64 references (Emulation/kernel_checks.cpp): conversions incl. RNE ties/NaN,
    /// embedding, RMSNorm, RoPE + KV append, prefill attention (GQA, sliding window, chunk offsets, head_dim 8…256),
    /// split-KV decode attention, SiLU gating, NLL/log-softmax/argmax ties, Mixtral routing/grouping/gather/combine.
    /// Proves the kernels' logic without a GPU; not their speed, nor NVRTC, nor GPU arithmetic.
    /// </summary>
    [GxxFact]
    public void KernelsComputeTheReferenceResultsInCpuEmulation()
    {
        using var dir = new TempDir();
        string emu = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Cuda", "Emulation");
        string kernels = dir["kernels_emu.cu"], exe = dir["kernel_checks"];
        // `extern __shared__` (dynamic shared memory) has no static stand-in: the emulation maps it to a global buffer.
        File.WriteAllText(kernels, KernelSources.Combined().Replace("extern __shared__", "EMU_EXTERN_SHARED"));
        var (code, output) = Run(GxxFactAttribute.Gxx!, "-std=c++20", "-O0", "-U_FORTIFY_SOURCE", "-ffp-contract=off", "-w",
            "-I", emu, $"-DKERNELS=\"{kernels}\"", "-o", exe, Path.Combine(emu, "kernel_checks.cpp"));
        Assert.True(code == 0, "g++ failed:\n" + output);
        (code, output) = Run(exe);
        Assert.True(code == 0 && output.TrimEnd().EndsWith("ALL OK", StringComparison.Ordinal), "kernel checks failed:\n" + Head(output, 40));
    }

    private static string Head(string s, int lines) => string.Join('\n', s.Split('\n').Take(lines));

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string outText = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), file + " timed out");
        return (p.ExitCode, outText + err.Result);
    }
}
