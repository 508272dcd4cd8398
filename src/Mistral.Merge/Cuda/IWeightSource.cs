using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

/// <summary>Where the GPU forward pass reads weights from: a checkpoint folder, or synthetic weights (benchmarks).</summary>
public interface IWeightSource
{
    ModelConfig Config { get; }
    /// <summary>Human-readable origin for error messages (the folder path).</summary>
    string Origin { get; }
    bool Contains(string name);
    TensorInfo Info(string name);
    ReadOnlySpan<byte> Bytes(string name);
}

/// <summary>A checkpoint folder (mmap'ed safetensors: bytes are read straight from the page cache).</summary>
public sealed class ModelFolderWeights(ModelFolder folder) : IWeightSource
{
    public ModelConfig Config { get; } = folder.Config ?? throw new MergeException($"{folder.Path}: no config.json: the forward pass needs the model's configuration");
    public string Origin => folder.Path;
    public bool Contains(string name) => folder.Contains(name);
    public TensorInfo Info(string name) => folder.Info(name);
    public ReadOnlySpan<byte> Bytes(string name) => folder.GetBytes(name);
}
