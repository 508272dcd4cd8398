using Mistral.Merge.IO;

namespace Mistral.Merge.Moe;

/// <summary>How an MoE surgery writes its checkpoint; shared by <see cref="MoeToDenseOptions"/> and <see cref="MoePruneOptions"/>.</summary>
public abstract record SurgeryOutputOptions
{
    /// <summary>Output dtype of float tensors (null: as stored).</summary>
    public DType? OutDType { get; init; }
    public WriterOptions Writer { get; init; } = new();
    /// <summary>Extra text for the model card (e.g. the recipe).</summary>
    public string? CardNote { get; init; }
    /// <summary>A recipe's text, written as mergekit_config.yml (recipe runs).</summary>
    public string? RecipeText { get; init; }
    /// <summary>The source's name in the model card (default: the folder name).</summary>
    public string? SourceLabel { get; init; }
    /// <summary>Copy tokenizer and generation files from the source.</summary>
    public bool CopyTokenizer { get; init; } = true;
    /// <summary>Receives (layers written, layers).</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>Worker threads of the expert alignment (aligned_mean): 0 = all logical processors.</summary>
    public int Threads { get; init; }
}
