namespace Mistral.Merge.IO.Pickle;

/// <summary>
/// The allow-list of globals a PyTorch weights checkpoint may name, in the spirit of
/// <c>torch.load(weights_only=True)</c>: the tensor rebuild functions, OrderedDict, the storage types, dtypes and
/// <c>torch.device</c>. Nothing here is ever called: a REDUCE of an allow-listed function builds the plain record
/// that function would have returned (<see cref="Call"/>), from arguments checked to be plain data. Every other
/// global is refused by name the moment the pickle mentions it, before anything after it is read.
/// </summary>
internal static class TorchGlobals
{
    public const string OrderedDict = "collections.OrderedDict";
    public const string RebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
    public const string RebuildTensor = "torch._utils._rebuild_tensor";
    public const string RebuildParameter = "torch._utils._rebuild_parameter";
    public const string RebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
    public const string Device = "torch.device";
    public const string Size = "torch.Size";

    /// <summary>The legacy typed storage classes torch.save names in persistent ids.</summary>
    public static readonly IReadOnlyDictionary<string, DType> StorageTypes = new Dictionary<string, DType>(StringComparer.Ordinal)
    {
        ["torch.FloatStorage"] = DType.F32, ["torch.HalfStorage"] = DType.F16, ["torch.BFloat16Storage"] = DType.BF16,
        ["torch.DoubleStorage"] = DType.F64, ["torch.LongStorage"] = DType.I64, ["torch.IntStorage"] = DType.I32,
        ["torch.ShortStorage"] = DType.I16, ["torch.CharStorage"] = DType.I8, ["torch.ByteStorage"] = DType.U8,
        ["torch.BoolStorage"] = DType.BOOL,
    };

    private static readonly HashSet<string> DTypeNames = new(StringComparer.Ordinal)
    {
        "torch.float32", "torch.float", "torch.float16", "torch.half", "torch.bfloat16", "torch.float64", "torch.double",
        "torch.int64", "torch.long", "torch.int32", "torch.int", "torch.int16", "torch.short", "torch.int8", "torch.uint8", "torch.bool",
    };

    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal)
    {
        OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState, Device, Size,
    };

    public static bool IsAllowed(string fullName) =>
        Functions.Contains(fullName) || StorageTypes.ContainsKey(fullName) || DTypeNames.Contains(fullName);

    /// <summary>The value a REDUCE of allow-listed <paramref name="fn"/> stands for; <paramref name="fail"/> builds the one-line error.</summary>
    public static object? Call(PickleGlobal fn, object?[] a, Func<string, Exception> fail)
    {
        switch (fn.FullName)
        {
            case OrderedDict:
                if (a.Length == 0) return new PickleDict();
                throw fail($"{OrderedDict} called with {a.Length} argument(s); torch.save writes it with none");
            case RebuildTensorV2 when a.Length is 6 or 7:
                if (a[4] is not bool) throw fail($"{fn.FullName}: requires_grad is {Describe(a[4])}, not a bool");
                if (a[5] is not PickleDict) throw fail($"{fn.FullName}: backward_hooks is {Describe(a[5])}, not a dict");
                return Tensor(fn, a, fail);
            case RebuildTensor when a.Length == 4:
                return Tensor(fn, a, fail);
            case RebuildParameter when a.Length == 3:
            case RebuildParameterWithState when a.Length == 4:
                if (a[0] is not TorchTensor t) throw fail($"{fn.FullName}: data is {Describe(a[0])}, not a tensor");
                return t;
            case Device when a.Length is 1 or 2 && a[0] is string type && (a.Length == 1 || a[1] is long or null):
                return new TorchDevice(type, a.Length == 2 ? (long?)a[1] : null);
            case Size when a.Length == 1 && a[0] is PickleTuple size:
                return size;
            case RebuildTensorV2 or RebuildTensor or RebuildParameter or RebuildParameterWithState or Device or Size:
                throw fail($"{fn.FullName} called with {a.Length} argument(s) of unexpected kinds");
            default:
                throw fail($"'{fn.FullName}' is allowed as a value but not as a function to call");
        }
    }

    private static TorchTensor Tensor(PickleGlobal fn, object?[] a, Func<string, Exception> fail)
    {
        if (a[0] is not TorchStorage storage) throw fail($"{fn.FullName}: storage is {Describe(a[0])}, not a persistent storage reference");
        if (a[1] is not long offset || offset < 0) throw fail($"{fn.FullName}: storage offset is {Describe(a[1])}, not a non-negative integer");
        var shape = Longs(fn, "size", a[2], fail);
        var strides = Longs(fn, "stride", a[3], fail);
        if (shape.Length != strides.Length) throw fail($"{fn.FullName}: size has {shape.Length} dimensions but stride has {strides.Length}");
        return new TorchTensor(storage, offset, shape, strides);
    }

    public const int MaxRank = 64;

    private static long[] Longs(PickleGlobal fn, string what, object? v, Func<string, Exception> fail)
    {
        if (v is not PickleTuple t) throw fail($"{fn.FullName}: {what} is {Describe(v)}, not a tuple");
        if (t.Items.Length > MaxRank) throw fail($"{fn.FullName}: {what} has {t.Items.Length} dimensions (at most {MaxRank})");
        var r = new long[t.Items.Length];
        for (int i = 0; i < r.Length; i++)
            r[i] = t.Items[i] is long x and >= 0 ? x : throw fail($"{fn.FullName}: {what} entry {i} is {Describe(t.Items[i])}, not a non-negative integer");
        return r;
    }

    /// <summary>At most <paramref name="max"/> characters of <paramref name="s"/>, control characters as '?' (error lines stay one line).</summary>
    public static string Printable(string s, int max)
    {
        var t = s.Length <= max ? s : s[..max] + "…";
        return string.Create(t.Length, t, (span, src) => { for (int i = 0; i < span.Length; i++) span[i] = char.IsControl(src[i]) ? '?' : src[i]; });
    }

    /// <summary>A short, non-recursive description of a value for an error line.</summary>
    public static string Describe(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        string s => "'" + Printable(s, 40) + "'",
        PickleGlobal g => g.FullName,
        PickleTuple t => $"a tuple of {t.Items.Length}",
        PickleList => "a list",
        PickleDict => "a dict",
        TorchStorage => "a storage",
        TorchTensor => "a tensor",
        _ => "a " + v.GetType().Name.Replace("Pickle", "", StringComparison.Ordinal).ToLowerInvariant(),
    };
}
