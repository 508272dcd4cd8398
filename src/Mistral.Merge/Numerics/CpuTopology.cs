namespace Mistral.Merge.Numerics;

/// <summary>
/// The forward pass's default thread count: one per physical core this process may run on, as llama.cpp does.
/// SMT siblings share a core's FMA pipes and its L1, where the GEMM keeps its weight micro-panel, so a second
/// thread per core adds no arithmetic and evicts the panel; decode is bound by memory (bf16) or by the vector units
/// the siblings share (q8_0). Read from Linux's sysfs (core and package ids of the CPUs in
/// <c>Cpus_allowed_list</c>); elsewhere, or when anything there is missing, every logical processor counts.
/// </summary>
public static class CpuTopology
{
    private static readonly Lazy<int> Cores = new(() => PhysicalCores("/sys/devices/system/cpu", AllowedList(), Environment.ProcessorCount));

    /// <summary>Physical cores available to this process (at most <see cref="Environment.ProcessorCount"/>, at least 1).</summary>
    public static int PhysicalCoreCount => Cores.Value;

    /// <summary>
    /// Distinct (package, core) pairs among the CPUs of <paramref name="allowedList"/> (a cpulist such as
    /// "0-3,8"), capped at <paramref name="processorCount"/> (a cgroup quota); <paramref name="processorCount"/>
    /// when the list or a CPU's topology cannot be read.
    /// </summary>
    internal static int PhysicalCores(string sysCpuDir, string? allowedList, int processorCount)
    {
        try
        {
            var cpus = ParseList(allowedList);
            if (cpus == null || cpus.Count == 0) return processorCount;
            var cores = new HashSet<(string, string)>();
            foreach (int cpu in cpus)
            {
                string topology = Path.Combine(sysCpuDir, "cpu" + cpu, "topology");
                string core = File.ReadAllText(Path.Combine(topology, "core_id")).Trim();
                string package = File.ReadAllText(Path.Combine(topology, "physical_package_id")).Trim();
                cores.Add((package, core));
            }
            return Math.Clamp(cores.Count, 1, Math.Max(1, processorCount));
        }
        catch (IOException) { return processorCount; }
        catch (UnauthorizedAccessException) { return processorCount; }
    }

    /// <summary>The CPUs of a cpulist ("0-3,8,10-11"); null when it is malformed.</summary>
    internal static List<int>? ParseList(string? list)
    {
        if (string.IsNullOrWhiteSpace(list)) return null;
        var cpus = new List<int>();
        foreach (var part in list.Trim().Split(','))
        {
            var ends = part.Split('-');
            if (ends.Length > 2 || !int.TryParse(ends[0], out int first) || first < 0) return null;
            int last = first;
            if (ends.Length == 2 && (!int.TryParse(ends[1], out last) || last < first || last - first > 65536)) return null;
            for (int c = first; c <= last; c++) cpus.Add(c);
        }
        return cpus;
    }

    private static string? AllowedList()
    {
        try
        {
            const string key = "Cpus_allowed_list:";
            return File.Exists("/proc/self/status")
                ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?[key.Length..].Trim()
                : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
