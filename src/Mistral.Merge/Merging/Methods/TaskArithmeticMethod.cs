namespace Mistral.Merge.Merging.Methods;

/// <summary>task_arithmetic: sparsification None, sign consensus false, normalize default false, rescale default false.</summary>
public sealed class TaskArithmeticMethod() : TaskVectorMethod("task_arithmetic", Sparsification.None, consensus: false, defaultNormalize: false, defaultRescale: false,
    title: "Task Arithmetic", paper: "https://arxiv.org/abs/2212.04089");
