using System.CommandLine;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// mergekit-yaml's command line on <c>merge</c>, so that a line pasted from a model card runs: the flags that mean
/// something here are aliases or options with mergekit's meaning (see <see cref="MergeCommand"/>); the flags that only
/// tune mergekit's own machinery are accepted, hidden from --help, and each gets one note saying what this tool
/// does instead. Every boolean is a <c>--name</c> / <c>--no-name</c> pair, as in mergekit.
/// </summary>
internal static class MergekitFlags
{
    /// <summary>Boolean machinery flags and what this tool does instead.</summary>
    private static readonly (string Name, string Instead)[] Switches =
    [
        ("cuda", "merges run on the CPU, streaming in float32; the result does not depend on the device"),
        ("low-cpu-memory", "memory is bounded by streaming row blocks from memory-mapped inputs"),
        ("read-to-gpu", "merges run on the CPU, streaming from memory-mapped inputs"),
        ("multi-gpu", "merges run on the CPU on all cores (--threads)"),
        ("gpu-rich", "merges run on the CPU on all cores (--threads)"),
        ("lazy-unpickle", "inputs are read lazily from memory-mapped safetensors"),
        ("clone-tensors", "every output tensor is written from its own buffer"),
        ("safe-serialization", "outputs are always safetensors"),
        ("trust-remote-code", "no model code is ever run"),
        ("async-write", "shards are written as tensors complete, by the merge's workers"),
    ];

    /// <summary>Machinery options with a value, and what this tool does instead.</summary>
    private static readonly (string Name, string Instead)[] Valued =
    [
        ("device", "merges run on the CPU"),
        ("write-threads", "shards are written by the merge's workers (--threads)"),
        ("lora-merge-cache", "model+adapter inputs are applied while streaming, with nothing cached"),
        ("lora-merge-dtype", "adapters are applied in float32 and rounded once to the output dtype"),
    ];

    /// <summary>Adds the hidden machinery flags (and their --no- forms) to <paramref name="cmd"/>; returns them for <see cref="Notes"/>.</summary>
    public static List<(Option Option, string Instead)> Add(Command cmd)
    {
        var added = new List<(Option Option, string Instead)>();
        foreach (var (name, instead) in Switches)
            foreach (var flag in new[] { "--" + name, "--no-" + name })
            {
                var o = new Option<bool>(flag) { Hidden = true };
                cmd.Options.Add(o);
                added.Add((o, instead));
            }
        foreach (var (name, instead) in Valued)
        {
            var o = new Option<string?>("--" + name) { Hidden = true };
            cmd.Options.Add(o);
            added.Add((o, instead));
        }
        return added;
    }

    /// <summary>One note per machinery flag given on the command line.</summary>
    public static IEnumerable<string> Notes(ParseResult p, List<(Option Option, string Instead)> added)
    {
        foreach (var (option, instead) in added)
            if (p.GetResult(option) is { Implicit: false })
                yield return $"note: {option.Name} (a mergekit option) is accepted and has no effect here: {instead}";
    }
}
