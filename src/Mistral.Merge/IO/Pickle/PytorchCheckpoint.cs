using System.Numerics;

namespace Mistral.Merge.IO.Pickle;

/// <summary>
/// A PyTorch <c>torch.save</c> weights file (<c>pytorch_model.bin</c>), opened as a memory-mapped
/// <see cref="SafetensorsFile"/> whose tensors are byte ranges of the file itself (<c>DataStart</c> 0): the zip
/// format (torch ≥ 1.6: <c>NAME/data.pkl</c>, one stored member <c>NAME/data/KEY</c> per storage) and the legacy
/// format (magic number, protocol and system-info pickles, the object pickle, the storage-key pickle, then each
/// storage as an 8-byte element count and its raw bytes). The pickles are read by <see cref="RestrictedUnpickler"/>:
/// nothing in the file is ever executed. Little-endian files only (as every torch.save on x86 and ARM writes).
/// </summary>
public static unsafe class PytorchCheckpoint
{
    public const string ZipFormat = "PyTorch zip";
    public const string LegacyFormat = "PyTorch legacy";

    /// <summary>torch.serialization.MAGIC_NUMBER, the first pickle of a legacy file.</summary>
    private static readonly BigInteger Magic = BigInteger.Parse("119547037146038801333356", System.Globalization.CultureInfo.InvariantCulture);
    private const long LegacyProtocol = 1001;

    public static SafetensorsFile Open(string path) => SafetensorsFile.OpenMapped(path, "a PyTorch checkpoint", Parse);

    internal static SafetensorsFile.Layout Parse(string path, long length, byte* p)
    {
        if (length >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4) return Zip(path, length, p);
        if (length >= 2 && p[0] == 0x80) return Legacy(path, length, p);
        if (length >= 262 && new ReadOnlySpan<byte>(p + 257, 5).SequenceEqual("ustar"u8))
            throw new MergeException($"{path}: a tar-format PyTorch checkpoint (torch < 0.4), which is not supported; re-save it with a current torch.save");
        throw new MergeException($"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle)");
    }

    private static SafetensorsFile.Layout Zip(string path, long length, byte* p)
    {
        var entries = ZipDirectory.Read(path, p, length);
        var pickles = entries.Keys.Where(n => n.EndsWith("/data.pkl", StringComparison.Ordinal) && n.IndexOf('/') == n.Length - 9).ToList();
        if (pickles.Count != 1)
            throw new MergeException(pickles.Count == 0
                ? $"{path}: a zip archive without a NAME/data.pkl member (not a torch.save checkpoint)"
                : $"{path}: a zip archive with {pickles.Count} NAME/data.pkl members ({string.Join(", ", pickles.Take(3).Select(N))}…); torch.save writes one");
        var prefix = pickles[0][..^"data.pkl".Length];
        var shownPrefix = N(prefix);
        if (entries.TryGetValue(prefix + "byteorder", out var order))
        {
            var text = System.Text.Encoding.ASCII.GetString(Stored(path, order, 16, p));
            if (text != "little") throw new MergeException($"{path}: byte order '{TorchGlobals.Printable(text, 16)}' (member {N(order.Name)}); only little-endian checkpoints are supported");
        }
        var pkl = entries[pickles[0]];
        Stored(path, pkl, long.MaxValue, null);
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        var (value, end) = RestrictedUnpickler.Load($"{path}: pickle {N(pkl.Name)}", p, pkl.DataOffset, pkl.DataOffset + pkl.Length, StorageLoader(storages));
        if (end != pkl.DataOffset + pkl.Length)
            throw new MergeException($"{path}: {pkl.DataOffset + pkl.Length - end} bytes after the end of pickle {N(pkl.Name)}");
        var starts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var s in storages.Values)
        {
            if (!entries.TryGetValue(prefix + "data/" + s.Key, out var member))
                throw new MergeException($"{path}: storage '{TorchGlobals.Printable(s.Key, 40)}' has no member {shownPrefix}data/{TorchGlobals.Printable(s.Key, 40)}");
            Stored(path, member, long.MaxValue, null);
            long need = Bytes(path, s);
            if (member.Length != need)
                throw new MergeException($"{path}: member {N(member.Name)} holds {member.Length} bytes but its {s.TypeName} of {s.Elements} elements needs {need}");
            starts[s.Key] = member.DataOffset;
        }
        return new(0, TorchStateDict.Place(path, value, starts), ZipFormat);
    }

    /// <summary>Checks that a member is stored uncompressed (PyTorch writes them so, and only then can it be mapped); returns its bytes when <paramref name="p"/> is given.</summary>
    private static ReadOnlySpan<byte> Stored(string path, ZipEntry e, long maxLength, byte* p)
    {
        if (e.Method != 0 || e.CompressedLength != e.Length)
            throw new MergeException($"{path}: member {TorchGlobals.Printable(e.Name, 80)} is compressed (method {e.Method}); torch.save stores every member uncompressed");
        if (e.Length > maxLength) throw new MergeException($"{path}: member {TorchGlobals.Printable(e.Name, 80)} is {e.Length} bytes (at most {maxLength})");
        return p == null ? default : new ReadOnlySpan<byte>(p + e.DataOffset, (int)e.Length);
    }

    private static SafetensorsFile.Layout Legacy(string path, long length, byte* p)
    {
        var (magic, pos) = RestrictedUnpickler.Load($"{path}: legacy header", p, 0, length);
        if (magic is not BigInteger m || m != Magic)
            throw new MergeException($"{path}: a pickle without the PyTorch magic number (not a torch.save checkpoint)");
        (var protocol, pos) = RestrictedUnpickler.Load($"{path}: legacy header", p, pos, length);
        if (protocol is not LegacyProtocol)
            throw new MergeException($"{path}: legacy protocol version {TorchGlobals.Describe(protocol)}; only {LegacyProtocol} is supported");
        (var sysInfo, pos) = RestrictedUnpickler.Load($"{path}: legacy system info", p, pos, length);
        if (sysInfo is not PickleDict info || !info.Items.Any(kv => kv.Key is "little_endian"))
            throw new MergeException($"{path}: legacy system info is {TorchGlobals.Describe(sysInfo)}, not a dict with 'little_endian'");
        if (info.Items.First(kv => kv.Key is "little_endian").Value is not true)
            throw new MergeException($"{path}: a big-endian checkpoint; only little-endian checkpoints are supported");

        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        (var value, pos) = RestrictedUnpickler.Load($"{path}: pickle", p, pos, length, StorageLoader(storages));
        (var keys, pos) = RestrictedUnpickler.Load($"{path}: storage key pickle", p, pos, length);
        if (keys is not PickleList list || list.Items.Any(k => k is not string))
            throw new MergeException($"{path}: the storage key pickle is {TorchGlobals.Describe(keys)}, not a list of strings");
        var starts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string key in list.Items.Cast<string>())
        {
            if (!storages.TryGetValue(key, out var s))
                throw new MergeException($"{path}: storage '{TorchGlobals.Printable(key, 40)}' is listed but no tensor refers to it");
            if (starts.ContainsKey(key)) throw new MergeException($"{path}: storage '{TorchGlobals.Printable(key, 40)}' is listed twice");
            if (length - pos < 8) throw new MergeException($"{path}: the file ends before storage '{TorchGlobals.Printable(key, 40)}' (truncated)");
            long count = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(p + pos, 8));
            if (count != s.Elements)
                throw new MergeException($"{path}: storage '{TorchGlobals.Printable(key, 40)}' at byte {pos} says {count} elements but the pickle says {s.Elements}");
            long need = Bytes(path, s);
            if (need > length - pos - 8)
                throw new MergeException($"{path}: storage '{TorchGlobals.Printable(key, 40)}' ({need} bytes at byte {pos + 8}) runs past the end of the file (truncated)");
            starts[key] = pos + 8;
            pos += 8 + need;
        }
        foreach (var key in storages.Keys)
            if (!starts.ContainsKey(key)) throw new MergeException($"{path}: storage '{TorchGlobals.Printable(key, 40)}' is used by a tensor but missing from the storage list");
        if (pos != length) throw new MergeException($"{path}: {length - pos} trailing bytes after the last storage");
        return new(0, TorchStateDict.Place(path, value, starts), LegacyFormat);
    }

    /// <summary>A member name as an error line shows it (control characters replaced).</summary>
    private static string N(string name) => TorchGlobals.Printable(name, 80);

    private static long Bytes(string path, TorchStorage s)
    {
        try { return checked(s.Elements * s.DType.SizeOf()); }
        catch (OverflowException) { throw new MergeException($"{path}: storage '{TorchGlobals.Printable(s.Key, 40)}' of {s.Elements} elements overflows"); }
    }

    /// <summary>
    /// torch.save's persistent ids: <c>('storage', StorageType, key, location, numel)</c>, plus the legacy format's
    /// <c>view_metadata</c> (None; storage views of torch &lt; 1.0 are refused). Each key is one storage.
    /// </summary>
    private static Func<object?, Func<string, Exception>, object?> StorageLoader(Dictionary<string, TorchStorage> storages) => (pid, fail) =>
    {
        if (pid is not PickleTuple { Items: var a } || a.Length is not (5 or 6) || a[0] is not "storage")
            throw fail($"persistent id {TorchGlobals.Describe(pid)} is not a ('storage', type, key, location, size) tuple");
        if (a[1] is not PickleGlobal g || !TorchGlobals.StorageTypes.TryGetValue(g.FullName, out var dtype))
            throw fail($"persistent id names {TorchGlobals.Describe(a[1])}, not a storage type");
        if (a[2] is not string key) throw fail($"storage key {TorchGlobals.Describe(a[2])} is not a string");
        if (a[3] is not string) throw fail($"storage location {TorchGlobals.Describe(a[3])} is not a string");
        if (a[4] is not long elements || elements < 0) throw fail($"storage size {TorchGlobals.Describe(a[4])} is not a non-negative integer");
        if (a.Length == 6 && a[5] is not null) throw fail($"storage '{TorchGlobals.Printable(key, 40)}' is a view of another storage (torch < 1.0), which is not supported");
        var s = new TorchStorage(key, dtype, g.Name, elements);
        if (storages.TryGetValue(key, out var seen))
        {
            if (seen != s) throw fail($"storage '{TorchGlobals.Printable(key, 40)}' is described twice, differently ({seen.TypeName} of {seen.Elements}, {s.TypeName} of {s.Elements})");
            return seen;
        }
        storages[key] = s;
        return s;
    };
}
