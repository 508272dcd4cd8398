using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

/// <summary>
/// How one decoder layer is packed into a single contiguous device slot (one host→device copy per layer when
/// streaming). Parts, each 256-byte aligned: input/post-attention norms (f32); fused QKV rows [q; k; v]
/// [(H + 2·KVH)·D, hidden]; o_proj [hidden, H·D]; dense MLP: fused [gate; up] [2I, hidden] and down [hidden, I];
/// MoE: router [E, hidden], per-expert fused [w1; w3] [E, 2I, hidden] and w2 [E, hidden, I]. Matrices are in the
/// compute dtype (bf16, or f32 for the exact path).
/// </summary>
public sealed class LayerLayout
{
    public const int Align = 256;

    public int Hidden { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public int Intermediate { get; }
    public int Experts { get; }
    public int ExpertsPerToken { get; }
    public bool Bf16 { get; }
    public int ElementSize => Bf16 ? 2 : 4;
    public int QkvRows => (Heads + 2 * KvHeads) * HeadDim;
    public bool IsMoe => Experts > 0;

    public long Norm1 { get; }
    public long Norm2 { get; }
    public long Qkv { get; }
    public long O { get; }
    public long GateUp { get; }
    public long Down { get; }
    public long Router { get; }
    public long ExpertGateUpStride => (long)2 * Intermediate * Hidden * ElementSize;
    public long ExpertDownStride => (long)Hidden * Intermediate * ElementSize;
    public long Bytes { get; }

    /// <summary>The declaration the tensor names come from.</summary>
    public Architecture Names { get; }

    public LayerLayout(ModelConfig c, bool bf16)
    {
        Names = c.Names;
        Hidden = c.HiddenSize; Heads = c.NumAttentionHeads; KvHeads = c.NumKeyValueHeads; HeadDim = c.HeadDim;
        Intermediate = c.IntermediateSize; Experts = Names.IsMoe ? c.NumLocalExperts : 0; ExpertsPerToken = c.NumExpertsPerTok; Bf16 = bf16;
        long at = 0;
        long Take(long bytes) { long o = at; at = (at + bytes + Align - 1) / Align * Align; return o; }
        Norm1 = Take((long)Hidden * 4);
        Norm2 = Take((long)Hidden * 4);
        Qkv = Take((long)QkvRows * Hidden * ElementSize);
        O = Take((long)Hidden * Heads * HeadDim * ElementSize);
        if (IsMoe)
        {
            Router = Take((long)Experts * Hidden * ElementSize);
            GateUp = Take(Experts * ExpertGateUpStride);
            Down = Take(Experts * ExpertDownStride);
        }
        else
        {
            Router = -1;
            GateUp = Take(ExpertGateUpStride);
            Down = Take(ExpertDownStride);
        }
        Bytes = at;
    }

    /// <summary>Every (tensor name, byte offset in the slot, expected shape, is-norm) of layer <paramref name="layer"/>, in slot order.</summary>
    public IEnumerable<(string Name, long Offset, long[] Shape, bool Norm)> Parts(int layer)
    {
        var a = Names;
        string L(string s) => a.Layer(layer, s);
        long qRows = (long)Heads * HeadDim, kvRows = (long)KvHeads * HeadDim;
        yield return (L(a.InputNorm), Norm1, [Hidden], true);
        yield return (L(a.PostAttentionNorm), Norm2, [Hidden], true);
        yield return (L(a.Q), Qkv, [qRows, Hidden], false);
        yield return (L(a.K), Qkv + qRows * Hidden * ElementSize, [kvRows, Hidden], false);
        yield return (L(a.V), Qkv + (qRows + kvRows) * Hidden * ElementSize, [kvRows, Hidden], false);
        yield return (L(a.O), O, [Hidden, qRows], false);
        long upOffset = (long)Intermediate * Hidden * ElementSize;
        if (IsMoe)
        {
            yield return (L(a.Router!), Router, [Experts, Hidden], false);
            for (int e = 0; e < Experts; e++)
            {
                yield return (L(Architecture.Expert(a.ExpertGate!, e)), GateUp + e * ExpertGateUpStride, [Intermediate, Hidden], false);
                yield return (L(Architecture.Expert(a.ExpertUp!, e)), GateUp + e * ExpertGateUpStride + upOffset, [Intermediate, Hidden], false);
                yield return (L(Architecture.Expert(a.ExpertDown!, e)), Down + e * ExpertDownStride, [Hidden, Intermediate], false);
            }
        }
        else
        {
            yield return (L(a.Gate!), GateUp, [Intermediate, Hidden], false);
            yield return (L(a.Up!), GateUp + upOffset, [Intermediate, Hidden], false);
            yield return (L(a.Down!), Down, [Hidden, Intermediate], false);
        }
    }
}
