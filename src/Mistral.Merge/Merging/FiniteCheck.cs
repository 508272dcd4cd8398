using System.Collections.Concurrent;
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

    // 64 KB of float32: each block is scanned while the conversion has it in cache, so the checks add no memory traffic.
    private const int Block = 1 << 14;

    /// <summary>Widens stored bytes to float32 block by block; returns the largest magnitude's bits (see <see cref="FiniteScan.MaxAbsBits"/>).</summary>
    public static uint ToSingleScanned(ReadOnlySpan<byte> src, DType type, Span<float> dst)
    {
        int size = type.SizeOf();
        uint max = 0;
        for (int i = 0; i < dst.Length; i += Block)
        {
            var d = dst.Slice(i, Math.Min(Block, dst.Length - i));
            Conversions.ToSingle(src.Slice(i * size, d.Length * size), type, d);
            max = Math.Max(max, FiniteScan.MaxAbsBits(d));
        }
        return max;
    }

    /// <summary>Rounds float32 to <paramref name="type"/> block by block; returns the largest magnitude's bits before rounding.</summary>
    public static uint FromSingleScanned(ReadOnlySpan<float> src, DType type, Span<byte> dst)
    {
        int size = type.SizeOf();
        uint max = 0;
        for (int i = 0; i < src.Length; i += Block)
        {
            var s = src.Slice(i, Math.Min(Block, src.Length - i));
            max = Math.Max(max, FiniteScan.MaxAbsBits(s));
            Conversions.FromSingle(s, type, dst.Slice(i * size, s.Length * size));
        }
        return max;
    }

    /// <summary>Checks one input's chunk (its <see cref="ToSingleScanned"/> result), before the method may use it as scratch.</summary>
    public void Input(MergeTask task, int input, uint maxAbsBits)
    {
        if (maxAbsBits >= FiniteScan.InfBits) Found(task, InputCause(task.Inputs[input]));
    }

    /// <summary>Checks the stored bytes of a raw copy (passthrough without conversion).</summary>
    public void RawInput(MergeTask task, ReadOnlySpan<byte> bytes)
    {
        if (!FiniteScan.AllFinite(bytes, task.Inputs[0].Info.DType)) Found(task, InputCause(task.Inputs[0]));
    }

    /// <summary>Checks one output piece (its <see cref="FromSingleScanned"/> result) against the range of the output dtype, before it is written.</summary>
    public void Output(MergeTask task, uint max)
    {
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
