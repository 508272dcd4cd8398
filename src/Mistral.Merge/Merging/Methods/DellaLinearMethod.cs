namespace Mistral.Merge.Merging.Methods;

/// <summary>della_linear: sparsification DellaMagprune, sign consensus false, normalize default false, rescale default true.</summary>
public sealed class DellaLinearMethod() : TaskVectorMethod("della_linear", Sparsification.DellaMagprune, consensus: false, defaultNormalize: false, defaultRescale: true,
    title: "Linear DELLA", paper: "https://arxiv.org/abs/2406.11617");
