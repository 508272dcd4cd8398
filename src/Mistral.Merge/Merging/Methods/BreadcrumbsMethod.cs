namespace Mistral.Merge.Merging.Methods;

/// <summary>breadcrumbs: sparsification MagnitudeOutliers, sign consensus false, normalize default false, rescale default false.</summary>
public sealed class BreadcrumbsMethod() : TaskVectorMethod("breadcrumbs", Sparsification.MagnitudeOutliers, consensus: false, defaultNormalize: false, defaultRescale: false,
    title: "Model Breadcrumbs", paper: "https://arxiv.org/abs/2312.06795");
