namespace Mistral.Merge.Merging.Methods;

/// <summary>ties: sparsification Magnitude, sign consensus true, normalize default true, rescale default false.</summary>
public sealed class TiesMethod() : TaskVectorMethod("ties", Sparsification.Magnitude, consensus: true, defaultNormalize: true, defaultRescale: false,
    title: "TIES", paper: "https://arxiv.org/abs/2306.01708");
