namespace Mistral.Merge.Cuda;

public enum ComputeDevice { Cpu, Cuda }

/// <summary>
/// Resolves the user's --device value: "cpu" → CPU without touching any NVIDIA library; "cuda" → CUDA or a
/// MergeException saying why not; "auto" → CUDA when usable, otherwise the CPU (the reason is kept in
/// <see cref="Selection.Note"/> so a verbose caller may print it).
/// </summary>
public static class DeviceSelector
{
    public sealed record Selection(ComputeDevice Device, CudaContext? Context, string? Note);

    public static readonly string[] Values = ["auto", "cpu", "cuda"];

    /// <summary>Help text for the CLI's --device option (default "auto").</summary>
    public const string OptionDescription =
        "Where the forward pass runs: auto (CUDA when a usable NVIDIA GPU, driver, NVRTC and cuBLAS are present, else CPU), cpu, or cuda (fails with the reason when unusable)";

    public static Selection Resolve(string? value) => Resolve(value, Probe);

    /// <summary>Testable core: <paramref name="probe"/> stands for <see cref="CudaRuntime.TryOpen"/>.</summary>
    public static Selection Resolve(string? value, TryOpenProbe probe)
    {
        string v = (value ?? "auto").Trim().ToLowerInvariant();
        switch (v)
        {
            case "cpu":
                return new Selection(ComputeDevice.Cpu, null, null);
            case "cuda":
            case "gpu":
                if (probe(out var ctx, out var why)) return new Selection(ComputeDevice.Cuda, ctx, null);
                throw new MergeException("--device cuda: CUDA is not usable here: " + why);
            case "auto":
            case "":
                return probe(out var c, out var w)
                    ? new Selection(ComputeDevice.Cuda, c, null)
                    : new Selection(ComputeDevice.Cpu, null, "CUDA not used: " + w);
            default:
                throw new MergeException($"--device {value}: unknown device (expected one of: {string.Join(", ", Values)})");
        }
    }

    public delegate bool TryOpenProbe(out CudaContext? context, out string whyNot);

    private static bool Probe(out CudaContext? context, out string whyNot) => CudaRuntime.TryOpen(out context, out whyNot);
}
