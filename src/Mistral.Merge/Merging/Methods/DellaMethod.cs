namespace Mistral.Merge.Merging.Methods;

/// <summary>della: sparsification DellaMagprune, sign consensus true, normalize default true, rescale default true.</summary>
public sealed class DellaMethod() : TaskVectorMethod("della", Sparsification.DellaMagprune, consensus: true, defaultNormalize: true, defaultRescale: true,
    title: "DELLA", paper: "https://arxiv.org/abs/2406.11617");
