namespace Mistral.Merge.Merging.Methods;

/// <summary>dare_linear: sparsification Random, sign consensus false, normalize default false, rescale default true.</summary>
public sealed class DareLinearMethod() : TaskVectorMethod("dare_linear", Sparsification.Random, consensus: false, defaultNormalize: false, defaultRescale: true,
    title: "Linear DARE", paper: "https://arxiv.org/abs/2311.03099");
