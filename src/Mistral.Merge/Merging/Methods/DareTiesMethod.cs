namespace Mistral.Merge.Merging.Methods;

/// <summary>dare_ties: sparsification Random, sign consensus true, normalize default false, rescale default true.</summary>
public sealed class DareTiesMethod() : TaskVectorMethod("dare_ties", Sparsification.Random, consensus: true, defaultNormalize: false, defaultRescale: true,
    title: "DARE TIES", paper: "https://arxiv.org/abs/2311.03099");
