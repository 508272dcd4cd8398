using Mistral.Merge.IO;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe;

/// <summary>Shared writing steps of MoE surgery: carried tensors, float tensors in a target dtype (side files: <see cref="SideFiles"/>).</summary>
internal static class CheckpointOutput
{
    public static DType CarriedDType(TensorInfo t, DType? outDType) => outDType != null && t.DType.IsFloatMath() ? outDType.Value : t.DType;

    /// <summary>Copies a tensor's bytes, or converts it through float32 when the dtype changes.</summary>
    public static void Carry(ModelFolder src, CheckpointWriter w, string name, DType target)
    {
        var (file, info) = src.Lookup(name);
        if (info.DType == target) { w.Write(name, file.GetBytes(info)); return; }
        WriteFloats(w, name, src.ReadSingle(name), target);
    }

    public static void WriteFloats(CheckpointWriter w, string name, float[] values, DType target)
    {
        const int Chunk = 1 << 22;
        var buf = new byte[Math.Min(values.Length, Chunk) * target.SizeOf()];
        for (int off = 0; off < values.Length; off += Chunk)
        {
            int n = Math.Min(Chunk, values.Length - off);
            var dst = buf.AsSpan(0, n * target.SizeOf());
            Conversions.FromSingle(values.AsSpan(off, n), target, dst);
            w.Write(name, dst, (long)off * target.SizeOf());
        }
    }
}
