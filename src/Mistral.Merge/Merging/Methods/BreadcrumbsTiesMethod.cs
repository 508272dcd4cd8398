namespace Mistral.Merge.Merging.Methods;

/// <summary>breadcrumbs_ties: sparsification MagnitudeOutliers, sign consensus true, normalize default false, rescale default false.</summary>
public sealed class BreadcrumbsTiesMethod() : TaskVectorMethod("breadcrumbs_ties", Sparsification.MagnitudeOutliers, consensus: true, defaultNormalize: false, defaultRescale: false,
    title: "Model Breadcrumbs with TIES", paper: "https://arxiv.org/abs/2312.06795");
