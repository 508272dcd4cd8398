namespace Mistral.Merge.IO;

/// <summary>The checks of an output folder that come before any work, shared by merges and MoE surgeries.</summary>
public static class OutputFolder
{
    /// <summary>
    /// Refuses an output folder that exists and is not empty without <paramref name="force"/>
    /// (<see cref="CheckpointWriter.CheckDestination"/>), then one that is, or contains, an input.
    /// </summary>
    public static void Check(string outDir, bool force, IEnumerable<(string Label, string Folder)> inputs)
    {
        CheckpointWriter.CheckDestination(outDir, force);
        CheckNotInput(outDir, inputs);
    }

    /// <summary>Refuses an output folder that is, or contains, one of <paramref name="inputs"/> (label as written, folder).</summary>
    public static void CheckNotInput(string outDir, IEnumerable<(string Label, string Folder)> inputs)
    {
        var outFull = Path.GetFullPath(outDir).TrimEnd('/');
        foreach (var (label, folder) in inputs)
        {
            var inFull = Path.GetFullPath(folder).TrimEnd('/');
            if (inFull == outFull || inFull.StartsWith(outFull + "/", StringComparison.Ordinal))
                throw new MergeException($"{outDir}: the output folder {(inFull == outFull ? "is" : "contains")} the input model '{label}' ({inFull}); choose another output folder");
        }
    }
}
