using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe;

/// <summary>Shared writing steps of MoE surgery: carried tensors, float tensors in a target dtype (side files: <see cref="SideFiles"/>).</summary>
internal static class CheckpointOutput
{
    public static DType CarriedDType(TensorInfo t, DType? outDType) => outDType != null && t.DType.IsFloatMath() ? outDType.Value : t.DType;

    /// <summary>The output plan's first part: every carried tensor (attention, norms, embeddings, head) at its output dtype.</summary>
    public static List<PlannedTensor> PlanCarried(ModelFolder folder, MixtralLayout m, DType? outDType)
    {
        var plan = new List<PlannedTensor>();
        foreach (var n in m.Carried)
        {
            var t = folder.Info(n);
            plan.Add(new PlannedTensor(n, CarriedDType(t, outDType), t.Shape));
        }
        return plan;
    }

    /// <summary>Copies a tensor's bytes, or converts it through float32 when the dtype changes; refuses NaN/Inf either way.</summary>
    public static void Carry(ModelFolder src, CheckpointWriter w, string name, DType target)
    {
        var (file, info) = src.Lookup(name);
        if (info.DType == target)
        {
            const int Piece = 64 << 20;
            for (long off = 0; off < info.ByteLength; off += Piece)
                if (!FiniteScan.AllFinite(file.GetBytes(info, off, (int)Math.Min(Piece, info.ByteLength - off)), info.DType))
                    throw NonFinite(name, "non-finite values in the source tensor (inspect --check lists them)");
            w.CopyFrom(name, file, info, 0, info.ByteLength);
            return;
        }
        WriteFloats(w, name, src.ReadSingle(name), target);
    }

    private static MergeException NonFinite(string name, string cause) => new($"{name}: {cause}; nothing was written");

    public static void WriteFloats(CheckpointWriter w, string name, ReadOnlySpan<float> values, DType target)
    {
        const int Chunk = 1 << 22;
        var buf = new byte[Math.Min(values.Length, Chunk) * target.SizeOf()];
        for (int off = 0; off < values.Length; off += Chunk)
        {
            int n = Math.Min(Chunk, values.Length - off);
            var dst = buf.AsSpan(0, n * target.SizeOf());
            uint max = FiniteScan.MaxAbsBits(values.Slice(off, n));
            if (max >= FiniteScan.OverflowBits(target))
                throw NonFinite(name, max >= FiniteScan.InfBits ? "the result holds NaN or Inf (inspect --check lists the source's non-finite tensors)" : $"result overflowed {target.ToTorchName()}");
            Conversions.FromSingle(values.Slice(off, n), target, dst);
            w.Write(name, dst, (long)off * target.SizeOf());
        }
    }

    /// <summary>The closing steps of a surgery: config, side files, recipe, model card, then the atomic commit.</summary>
    public static void Finish(CheckpointWriter w, string source, string sourceFolder, SurgeryOutputOptions o,
        JsonObject config, string what, long parameters, string? cardNote)
    {
        w.AddFile("config.json", JsonText.Write(config));
        if (o.CopyTokenizer) SideFiles.CopyExisting(sourceFolder, w, SideFiles.All);
        if (o.RecipeText != null) w.AddFile(Merging.OutputFiles.RecipeFileName, o.RecipeText);
        w.AddFile("README.md", MoeToDense.ModelCard(o.SourceLabel ?? source, what, parameters, cardNote));
        w.Commit(o.Writer.Force);
    }
}
