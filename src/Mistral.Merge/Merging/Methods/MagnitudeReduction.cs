namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// One model's magnitude sparsification (ties, breadcrumbs) across the reduction passes: the
/// selector's counting passes over δ and, with rescale, the L1 norms of δ (first pass) and of its
/// kept part (the first pass that starts with the selection known), each summed exactly like
/// <see cref="Kernels.L1"/> of the whole tensor.
/// </summary>
internal sealed class MagnitudeReduction
{
    public MagnitudeSelector Selector { get; }
    private readonly L1Stream? _before, _after;
    private int _pass, _afterPass = -1;

    public MagnitudeReduction(MagnitudeSelector selector, long elements, bool rescale)
    {
        Selector = selector;
        if (rescale) { _before = new L1Stream(elements); _after = new L1Stream(elements); }
        if (selector.BoundariesKnown) _afterPass = 0;
    }

    public bool NeedsPass => Selector.NeedsPass || _after != null && _pass <= _afterPass;

    /// <summary>Counts a piece of δ at flat index <paramref name="offset"/> (pieces in flat order); may zero its dropped elements.</summary>
    public void Count(Span<float> delta, long offset)
    {
        if (_pass == 0) _before?.Add(delta);
        Selector.Count(delta, offset);
        if (_pass == _afterPass && _after != null)
        {
            Selector.Mask(delta, offset);
            _after.Add(delta);
        }
    }

    public void EndPass()
    {
        Selector.EndPass();
        _pass++;
        // The selection is known from now on: the tie pass (if any) records each piece before its mask.
        if (_afterPass < 0 && Selector.BoundariesKnown) _afterPass = _pass;
    }

    public double Before => _before!.Total;
    public double After => _after!.Total;
}
