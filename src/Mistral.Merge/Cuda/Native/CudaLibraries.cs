using System.Runtime.InteropServices;

namespace Mistral.Merge.Cuda.Native;

/// <summary>
/// Finds the NVIDIA libraries on first use, never at startup: nothing here runs until a CUDA path is asked for,
/// and each load happens at most once per process (<see cref="Lazy{T}"/>). Order: the driver libcuda.so.1
/// (installed with the NVIDIA driver, not the toolkit); NVRTC libnvrtc.so.13 then .12; cuBLAS libcublas.so.13
/// then .12 — each first by the loader's search path, then under $CUDA_PATH/lib64 and /usr/local/cuda/lib64.
/// </summary>
public static class CudaLibraries
{
    public const string DriverLinux = "libcuda.so.1";

    public static IReadOnlyList<string> DriverCandidates() =>
        OperatingSystem.IsWindows() ? ["nvcuda.dll"] : [DriverLinux];

    public static IReadOnlyList<string> NvrtcCandidates(string? cudaPath) =>
        OperatingSystem.IsWindows() ? ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"] : WithToolkitDirs(["libnvrtc.so.13", "libnvrtc.so.12"], cudaPath);

    public static IReadOnlyList<string> CublasCandidates(string? cudaPath) =>
        OperatingSystem.IsWindows() ? ["cublas64_13.dll", "cublas64_12.dll"] : WithToolkitDirs(["libcublas.so.13", "libcublas.so.12"], cudaPath);

    private static List<string> WithToolkitDirs(string[] names, string? cudaPath)
    {
        var list = new List<string>(names);
        var dirs = new List<string>();
        if (!string.IsNullOrWhiteSpace(cudaPath)) dirs.Add(Path.Combine(cudaPath, "lib64"));
        dirs.Add("/usr/local/cuda/lib64");
        foreach (var d in dirs.Distinct())
            foreach (var n in names) list.Add(Path.Combine(d, n));
        return list;
    }

    /// <summary>A library handle, or why there is none.</summary>
    public sealed record LoadResult(nint Handle, string? LoadedFrom, string? WhyNot)
    {
        public bool Ok => Handle != 0;
    }

    private static readonly Lazy<LoadResult> Driver = new(() => LoadFirst(DriverCandidates(),
        "libcuda.so.1 not found: no NVIDIA driver on this machine"));
    private static readonly Lazy<LoadResult> Nvrtc = new(() => LoadFirst(NvrtcCandidates(Environment.GetEnvironmentVariable("CUDA_PATH")),
        "libnvrtc.so.13/.12 not found: install the CUDA toolkit's NVRTC (or set CUDA_PATH) to compile the kernels"));
    private static readonly Lazy<LoadResult> Cublas = new(() => LoadFirst(CublasCandidates(Environment.GetEnvironmentVariable("CUDA_PATH")),
        "libcublas.so.13/.12 not found: install cuBLAS from the CUDA toolkit (or set CUDA_PATH)"));

    /// <summary>True once something asked for the driver (tests check that startup never does).</summary>
    public static bool DriverLoadAttempted => Driver.IsValueCreated;
    public static bool NvrtcLoadAttempted => Nvrtc.IsValueCreated;
    public static bool CublasLoadAttempted => Cublas.IsValueCreated;

    public static LoadResult LoadDriver() => Driver.Value;
    public static LoadResult LoadNvrtc() => Nvrtc.Value;
    public static LoadResult LoadCublas() => Cublas.Value;

    /// <summary>Tries each candidate in order with <see cref="NativeLibrary.TryLoad(string, out nint)"/>; never throws.</summary>
    public static LoadResult LoadFirst(IReadOnlyList<string> candidates, string whyNot)
    {
        foreach (var c in candidates)
        {
            if (Path.IsPathRooted(c) && !File.Exists(c)) continue;
            if (NativeLibrary.TryLoad(c, out var h)) return new LoadResult(h, c, null);
        }
        return new LoadResult(0, null, whyNot);
    }

    /// <summary>The address of <paramref name="symbol"/>, or a MergeException naming the library (too old a driver/toolkit).</summary>
    internal static nint Export(nint library, string libraryName, string symbol)
    {
        if (NativeLibrary.TryGetExport(library, symbol, out var p)) return p;
        throw new MergeException($"{libraryName} has no {symbol}: the installed NVIDIA driver or CUDA toolkit is too old for this backend");
    }

    /// <summary>The first of <paramref name="symbols"/> that exists (e.g. a symbol renamed between CUDA versions).</summary>
    internal static nint ExportAny(nint library, string libraryName, params string[] symbols)
    {
        foreach (var s in symbols)
            if (NativeLibrary.TryGetExport(library, s, out var p)) return p;
        throw new MergeException($"{libraryName} has none of {string.Join(", ", symbols)}: the installed NVIDIA driver or CUDA toolkit is too old for this backend");
    }
}
