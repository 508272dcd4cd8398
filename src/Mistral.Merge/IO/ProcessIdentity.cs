using System.Diagnostics;
using System.Globalization;

namespace Mistral.Merge.IO;

/// <summary>
/// A process named so that a reused pid is not mistaken for it: pid plus start time (on Linux field 22 of
/// /proc/PID/stat, clock ticks since boot).
/// </summary>
internal readonly record struct ProcessIdentity(int Pid, long StartTime)
{
    public static ProcessIdentity Current { get; } = new(Environment.ProcessId, StartTimeOf(Environment.ProcessId) ?? 0);

    public bool IsRunning => StartTimeOf(Pid) == StartTime;

    /// <summary>The start time of a running process; null when there is none with that pid (a zombie counts as gone).</summary>
    public static long? StartTimeOf(int pid)
    {
        if (pid <= 0) return null;
        if (!OperatingSystem.IsLinux())
        {
            try { using var p = Process.GetProcessById(pid); return p.HasExited ? null : p.StartTime.ToUniversalTime().Ticks; }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { return null; }
        }
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (IoErrors.IsIo(e)) { return null; }
        // "PID (comm) STATE ..." where comm may hold spaces and parentheses: fields count from the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        if (fields[0] is "Z" or "X") return null;
        return long.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    /// <summary>Whether a process with this pid runs (any start time).</summary>
    public static bool PidRunning(int pid) => StartTimeOf(pid) != null;
}
