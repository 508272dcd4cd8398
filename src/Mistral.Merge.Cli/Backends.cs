using Mistral.Merge.Cuda;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli;

/// <summary>
/// Creates the backend the CLI's --device asks for; the CPU path is exactly `new CpuBackend(model, threads)`.
/// It chooses between Inference's CPU backend and the CUDA one, so it sits above both, here in the CLI.
/// </summary>
internal static class Backends
{
    /// <param name="note">Receives one line when "auto" falls back to the CPU (why CUDA was not used), or names the GPU.</param>
    public static IBackend Create(TransformerModel model, string? device, int threads, bool offload = false, Action<string>? note = null)
    {
        if (model.IsGguf) // the CUDA path uploads safetensors tensors; GGUF weights (quantized too) are read on the CPU
        {
            if (string.Equals(device, "cuda", StringComparison.OrdinalIgnoreCase))
                throw new MergeException($"{model.Path}: GGUF files are evaluated on the CPU; use --device cpu or auto");
            if (offload) throw new MergeException("--offload streams layers to a GPU; GGUF files are evaluated on the CPU");
            return new CpuBackend(model, threads);
        }
        if (model.Weights == WeightFormat.Q8_0) // quantized at load for the CPU kernels
        {
            if (string.Equals(device, "cuda", StringComparison.OrdinalIgnoreCase))
                throw new MergeException("--weights q8_0 runs on the CPU; use --device cpu or auto");
            if (offload) throw new MergeException("--offload streams layers to a GPU; --weights q8_0 runs on the CPU");
            return new CpuBackend(model, threads);
        }
        var sel = DeviceSelector.Resolve(device);
        if (sel.Device == ComputeDevice.Cpu)
        {
            if (offload) throw new MergeException("--offload streams layers to a GPU; it needs --device cuda (or auto with a usable GPU)");
            if (sel.Note != null) note?.Invoke(sel.Note);
            return new CpuBackend(model, threads);
        }
        try
        {
            var b = new CudaBackend(sel.Context!, model, new CudaTransformerOptions { Offload = offload, Threads = threads }, ownsContext: true);
            note?.Invoke("device: " + b.Name);
            return b;
        }
        catch
        {
            sel.Context!.Dispose();
            throw;
        }
    }
}
