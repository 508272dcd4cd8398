namespace Mistral.Merge.IO.Pickle;

/// <summary>
/// The tensors of an unpickled state dict (name → tensor, a dict or OrderedDict as torch.save writes
/// <c>model.state_dict()</c>), placed in the file: each one becomes a <see cref="TensorInfo"/> whose byte range
/// lies inside its storage's bytes, so that it is read in place from the memory map. Tensors sharing a storage
/// (tied weights) and contiguous views at a storage offset are supported; other views are refused in one line.
/// </summary>
internal static class TorchStateDict
{
    /// <param name="storageStart">Where each storage's bytes begin in the file, by storage key.</param>
    public static List<TensorInfo> Place(string path, object? value, IReadOnlyDictionary<string, long> storageStart)
    {
        if (value is not PickleDict dict)
            throw new MergeException($"{path}: the checkpoint holds {TorchGlobals.Describe(value)}, not a state dict (a dict of tensor names to tensors)");
        var tensors = new List<TensorInfo>(dict.Items.Count);
        foreach (var (key, v) in dict.Items)
        {
            if (key is not string name) throw new MergeException($"{path}: the state dict has the key {TorchGlobals.Describe(key)}, which is not a string");
            var where = $"{path}: tensor '{TorchGlobals.Printable(name, 200)}'";
            if (v is not TorchTensor t)
                throw new MergeException($"{where} is {TorchGlobals.Describe(v)}, not a tensor (only a state dict of tensors can be read, as save_pretrained writes it)");
            tensors.Add(Place(where, name, t, storageStart));
        }
        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End != b.End ? a.End.CompareTo(b.End) : string.CompareOrdinal(a.Name, b.Name));
        return tensors;
    }

    private static TensorInfo Place(string where, string name, TorchTensor t, IReadOnlyDictionary<string, long> storageStart)
    {
        long elements = 1;
        try { foreach (var d in t.Shape) elements = checked(elements * d); }
        catch (OverflowException) { throw new MergeException($"{where}: shape {ShapeText(t.Shape)} overflows"); }
        if (elements > 0 && !IsContiguous(t.Shape, t.Strides))
            throw new MergeException($"{where}: a non-contiguous view (shape {ShapeText(t.Shape)}, strides {ShapeText(t.Strides)}), which is not supported; save it with .contiguous()");
        var s = t.Storage;
        if (t.StorageOffset > s.Elements || elements > s.Elements - t.StorageOffset)
            throw new MergeException($"{where}: {elements} elements at storage offset {t.StorageOffset} run past its {s.TypeName} of {s.Elements} elements");
        int size = s.DType.SizeOf();
        long begin = storageStart[s.Key] + t.StorageOffset * size; // fits: the storage's bytes were checked to lie in the file
        return new TensorInfo(name, s.DType, t.Shape, begin, begin + elements * size);
    }

    /// <summary>Row-major contiguous, as <c>torch.Tensor.is_contiguous()</c>: dimensions of size 1 may have any stride.</summary>
    private static bool IsContiguous(long[] shape, long[] strides)
    {
        long expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            if (strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    private static string ShapeText(long[] v) => "[" + string.Join(", ", v) + "]";
}
