namespace Mistral.Merge.IO.Pickle;

// The values a restricted unpickle builds. Plain data only: primitives are C# null, bool, long, BigInteger,
// double, string and byte[]; containers and the torch objects below hold no behaviour at all.

/// <summary>A <c>module.name</c> the pickle referred to; only allow-listed ones are ever created.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
}

internal sealed class PickleTuple(object?[] items)
{
    public readonly object?[] Items = items;
}

internal sealed class PickleList
{
    public readonly List<object?> Items = [];
}

internal sealed class PickleSet
{
    public readonly List<object?> Items = [];
}

/// <summary>A dict or OrderedDict: items in insertion order; a string key set twice keeps its place and takes the new value.</summary>
internal sealed class PickleDict
{
    public readonly List<KeyValuePair<object?, object?>> Items = [];
    private readonly Dictionary<string, int> _stringKeys = new(StringComparer.Ordinal);
    /// <summary>The state a BUILD gave it (a state dict's <c>_metadata</c>); kept, never used.</summary>
    public object? State;

    public void Set(object? key, object? value)
    {
        if (key is string s)
        {
            if (_stringKeys.TryGetValue(s, out var at)) { Items[at] = new(key, value); return; }
            _stringKeys[s] = Items.Count;
        }
        Items.Add(new(key, value));
    }
}

/// <summary>A storage a persistent id names: its key (zip entry <c>data/KEY</c> or legacy storage key), dtype and element count.</summary>
internal sealed record TorchStorage(string Key, DType DType, string TypeName, long Elements);

/// <summary>What <c>torch._utils._rebuild_tensor_v2</c> would build: a view of a storage (nothing is read yet).</summary>
internal sealed record TorchTensor(TorchStorage Storage, long StorageOffset, long[] Shape, long[] Strides);

internal sealed record TorchDevice(string Type, long? Index);
