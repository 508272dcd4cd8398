using System.Collections.Concurrent;
using Mistral.Merge.IO;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Merging;

/// <summary>
/// The executor's guard against NaN and Inf. Every input chunk is scanned as it is read, before the
/// method runs (so a broken input is named even when ties or dare would drop its values), and every
/// output chunk before it is rounded (so an overflow in the method or in the rounding to f16/bf16 is
/// caught). A finding throws one line naming the output tensor and the cause; with
/// <c>allow</c> it is a warning, once per output tensor, and the values are written.
/// </summary>
internal sealed class FiniteCheck(bool allow, Action<string>? warn)
{
    private readonly ConcurrentDictionary<string, byte> _warned = new(StringComparer.Ordinal);
    private readonly object _warnLock = new();

    /// <summary>Checks one input's float32 chunk (before the method may use it as scratch).</summary>
    public void Input(MergeTask task, int input, ReadOnlySpan<float> values)
    {
        if (!FiniteScan.AllFinite(values)) Found(task, InputCause(task.Inputs[input]));
    }

    /// <summary>Checks the stored bytes of a raw copy (passthrough without conversion).</summary>
    public void RawInput(MergeTask task, ReadOnlySpan<byte> bytes)
    {
        if (!FiniteScan.AllFinite(bytes, task.Inputs[0].Info.DType)) Found(task, InputCause(task.Inputs[0]));
    }

    /// <summary>Checks one output chunk against the range of the dtype it is about to be rounded to.</summary>
    public void Output(MergeTask task, ReadOnlySpan<float> values)
    {
        uint max = FiniteScan.MaxAbsBits(values);
        if (max < FiniteScan.OverflowBits(task.OutDType)) return;
        // Inputs were checked as they were read, so the method (or the rounding) made these values.
        Found(task, max > FiniteScan.InfBits ? "the result is NaN although every input is finite"
                  : max == FiniteScan.InfBits ? "result overflowed float32"
                  : $"result overflowed {task.OutDType.ToTorchName()} (finite in float32, beyond the output dtype's range)");
    }

    private static string InputCause(TaskInput input) => $"non-finite value in input model '{input.Model.Text}' tensor {input.TensorName}";

    private void Found(MergeTask task, string cause)
    {
        if (!allow) throw new MergeException($"{task.OutputName}: {cause}; nothing was written (--allow-nonfinite writes it anyway)");
        if (!_warned.TryAdd(task.OutputName, 0) || warn == null) return;
        lock (_warnLock) warn($"{task.OutputName}: {cause} (written anyway: --allow-nonfinite)");
    }
}
