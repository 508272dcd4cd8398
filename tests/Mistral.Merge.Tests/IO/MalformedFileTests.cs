using System.Text;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO;

/// <summary>Every defect of a safetensors file is a one-line MergeException naming the file (and tensor).</summary>
public class MalformedFileTests
{
    private static string T(string name, string dtype, string shape, long b, long e) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{b},{e}]}}";

    private static MergeException OpenBad(byte[] bytes, out string path)
    {
        var tmp = new TempDir();
        path = tmp["model.safetensors"];
        File.WriteAllBytes(path, bytes);
        var p = path;
        try { return Assert.Throws<MergeException>(() => { using var f = SafetensorsFile.Open(p); }); }
        finally { tmp.Dispose(); }
    }

    private static void AssertBad(byte[] bytes, string expectedAfterPath)
    {
        var e = OpenBad(bytes, out var path);
        Assert.Equal($"{path}: {expectedAfterPath}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static void AssertBad(string header, int dataBytes, string expectedAfterPath)
        => AssertBad(RawSafetensors.Build(header, new byte[dataBytes]), expectedAfterPath);

    [Fact]
    public void ValidFileOpens()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["m.safetensors"], RawSafetensors.Valid());
        using var f = SafetensorsFile.Open(tmp["m.safetensors"]);
        Assert.Equal(["a", "b", "c"], f.Tensors.Select(t => t.Name));
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal([1, 2, 2], f.Get("c").Shape);
        Assert.Equal(RawSafetensors.Parse(RawSafetensors.Valid())["b"].Bytes, f.GetBytes(f.Get("b")).ToArray());
    }

    [Fact] public void EmptyFile() => AssertBad([], "not a safetensors file (only 0 bytes; the 8-byte header length is missing)");
    [Fact] public void ShorterThanTheLengthField() => AssertBad([1, 2, 3], "not a safetensors file (only 3 bytes; the 8-byte header length is missing)");

    [Fact]
    public void HeaderLengthBeyondTheFile()
        => AssertBad(RawSafetensors.Build("{}", [], headerLengthOverride: 1000), "header length 1000 is beyond the end of the file (10 bytes)");

    [Fact]
    public void HeaderLengthAboveTheCap()
        => AssertBad(RawSafetensors.Build("{}", [], headerLengthOverride: 100_000_001), "header length 100000001 exceeds the 100000000-byte limit (corrupt or not a safetensors file)");

    [Fact]
    public void HeaderLengthHuge()
        => AssertBad(RawSafetensors.Build("{}", [], headerLengthOverride: ulong.MaxValue), $"header length {ulong.MaxValue} exceeds the 100000000-byte limit (corrupt or not a safetensors file)");

    [Fact] public void HeaderTooShort() => AssertBad(RawSafetensors.Build("{", []), "header of 1 bytes is too short to be a JSON object");
    [Fact] public void NotAnObject() => AssertBad("[1, 2]", 0, "header does not start with '{' (not a safetensors file)");
    [Fact] public void LeadingGarbage() => AssertBad("PK\u0003\u0004 zip", 0, "header does not start with '{' (not a safetensors file)");

    [Fact]
    public void InvalidUtf8()
    {
        var h = Encoding.UTF8.GetBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}, \"x\u00e9\":1}");
        h[^5] = 0xFF; // break the two-byte é
        AssertBad(RawSafetensors.Build(h, new byte[4]), "header is not valid UTF-8");
    }

    [Fact]
    public void InvalidJson()
    {
        var e = OpenBad(RawSafetensors.Build("{\"a\": }", []), out var path);
        Assert.StartsWith($"{path}: header is not valid JSON (", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DeeplyNestedJson()
    {
        var e = OpenBad(RawSafetensors.Build("{\"__metadata__\":" + new string('[', 100) + new string(']', 100) + "}", []), out var path);
        Assert.StartsWith($"{path}: header is not valid JSON (", e.Message);
    }

    [Fact]
    public void DuplicateTensorNames()
        => AssertBad("{" + T("w", "F32", "[1]", 0, 4) + "," + T("w", "F32", "[1]", 4, 8) + "}", 8, "duplicate entry 'w' in header");

    [Fact]
    public void DuplicateKeyInsideAnEntry()
        => AssertBad("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': duplicate key 'dtype'");

    [Fact] public void UnknownDType() => AssertBad("{" + T("w", "F7", "[1]", 0, 4) + "}", 4, "tensor 'w': unknown dtype 'F7'");
    [Fact] public void LowerCaseDTypeIsUnknown() => AssertBad("{" + T("w", "f32", "[1]", 0, 4) + "}", 4, "tensor 'w': unknown dtype 'f32'");
    [Fact] public void NegativeDimension() => AssertBad("{" + T("w", "F32", "[2,-1]", 0, 0) + "}", 0, "tensor 'w': negative dimension -1 in shape");
    [Fact] public void OverflowingShape() => AssertBad("{" + T("w", "F32", "[4294967296,4294967296]", 0, 4) + "}", 4, "tensor 'w': shape [4294967296,4294967296] overflows");
    [Fact] public void OverflowingByteSize() => AssertBad("{" + T("w", "F64", "[4611686018427387904]", 0, 4) + "}", 4, "tensor 'w': shape [4611686018427387904] overflows");
    [Fact] public void FractionalDimension() => AssertBad("{" + T("w", "F32", "[1.5]", 0, 4) + "}", 4, "tensor 'w': shape entry 1.5 is not an integer");
    [Fact] public void DimensionTooBigForInt64() => AssertBad("{" + T("w", "F32", "[99999999999999999999]", 0, 4) + "}", 4, "tensor 'w': shape entry 99999999999999999999 is not an integer");
    [Fact] public void ShapeNotAnArray() => AssertBad("{" + T("w", "F32", "4", 0, 4) + "}", 4, "tensor 'w': missing or non-array 'shape'");
    [Fact] public void MissingDType() => AssertBad("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing or non-string 'dtype'");
    [Fact] public void MissingOffsets() => AssertBad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w': 'data_offsets' must be an array of two integers");
    [Fact] public void ThreeOffsets() => AssertBad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "tensor 'w': 'data_offsets' must be an array of two integers");
    [Fact] public void StringOffsets() => AssertBad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, "tensor 'w': 'data_offsets' must be non-negative integers");
    [Fact] public void NegativeOffset() => AssertBad("{" + T("w", "F32", "[1]", -4, 0) + "}", 4, "tensor 'w': negative data offset");
    [Fact] public void EndBeforeBegin() => AssertBad("{" + T("w", "F32", "[1]", 4, 0) + "}", 4, "tensor 'w': data_offsets [4, 0) end before they begin");
    [Fact] public void EntryNotAnObject() => AssertBad("{\"w\":[1,2]}", 0, "tensor 'w': entry is not an object");
    [Fact] public void SizeDoesNotMatchShape() => AssertBad("{" + T("w", "F32", "[2,2]", 0, 12) + "}", 12, "tensor 'w': 12 bytes stored but shape [2, 2] of F32 needs 16");
    [Fact] public void OffsetsBeyondTheData() => AssertBad("{" + T("w", "F32", "[2]", 0, 8) + "}", 4, "tensor 'w': data_offsets [0, 8) are beyond the data section (4 bytes)");

    [Fact]
    public void OverlappingTensors()
        => AssertBad("{" + T("a", "F32", "[2]", 0, 8) + "," + T("b", "F32", "[2]", 4, 12) + "}", 12,
            "tensor 'b' bytes [4, 12) overlap tensor 'a' [0, 8)");

    [Fact]
    public void GapBetweenTensors()
        => AssertBad("{" + T("a", "F32", "[1]", 0, 4) + "," + T("b", "F32", "[1]", 8, 12) + "}", 12,
            "tensor 'b' starts at byte 8 but the previous tensor ends at 4 (gap in data section)");

    [Fact]
    public void GapAtTheStart() => AssertBad("{" + T("a", "F32", "[1]", 4, 8) + "}", 8, "tensor 'a' starts at byte 4 but the previous tensor ends at 0 (gap in data section)");

    [Fact]
    public void TrailingBytes()
        => AssertBad("{" + T("a", "F32", "[1]", 0, 4) + "}", 6, "2 trailing bytes after the last tensor (data section is 6 bytes, tensors cover 4)");

    [Fact]
    public void MetadataMustHoldStrings()
        => AssertBad("{\"__metadata__\":{\"format\":1}}", 0, "__metadata__ value 'format' is not a string");

    [Fact]
    public void MetadataMustBeAnObject()
        => AssertBad("{\"__metadata__\":\"pt\"}", 0, "__metadata__ must be an object of strings");

    [Fact]
    public void ZeroSizedTensorsAndEmptyHeaderAreValid()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["z.safetensors"], RawSafetensors.Build("{" + T("e", "F32", "[0,3]", 0, 0) + "," + T("s", "BOOL", "[]", 0, 1) + "}", [1]));
        using (var f = SafetensorsFile.Open(tmp["z.safetensors"]))
        {
            Assert.Equal(0, f.Get("e").ElementCount);
            Assert.Equal(1, f.Get("s").ElementCount);
        }
        File.WriteAllBytes(tmp["empty.safetensors"], RawSafetensors.Build("{}      ", []));
        using var g = SafetensorsFile.Open(tmp["empty.safetensors"]);
        Assert.Empty(g.Tensors);
    }

    [Fact]
    public void EveryDTypeIsRead()
    {
        string[] names = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"];
        int[] sizes = [8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 1, 1];
        var sb = new StringBuilder("{");
        long off = 0;
        for (int i = 0; i < names.Length; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(T("t" + i, names[i], "[3]", off, off + 3 * sizes[i]));
            off += 3 * sizes[i];
        }
        sb.Append('}');
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["all.safetensors"], RawSafetensors.Build(sb.ToString(), new byte[off]));
        using var f = SafetensorsFile.Open(tmp["all.safetensors"]);
        for (int i = 0; i < names.Length; i++)
        {
            var t = f.Get("t" + i);
            Assert.Equal(names[i], t.DType.ToSafetensorsName());
            Assert.Equal(3, t.ElementCount);
            Assert.Equal(sizes[i], t.DType.SizeOf());
        }
    }

    [Fact]
    public void MissingFileAndFolderMessages()
    {
        Assert.Equal("/nonexistent/x.safetensors: file not found",
            Assert.Throws<MergeException>(() => SafetensorsFile.Open("/nonexistent/x.safetensors")).Message);
        using var tmp = new TempDir();
        Assert.Equal($"{tmp.Path}: no model.safetensors, model.safetensors.index.json, *.safetensors, pytorch_model.bin or pytorch_model.bin.index.json in this folder",
            Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path)).Message);
        File.WriteAllBytes(tmp["model.safetensors"], RawSafetensors.Valid());
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp["model.safetensors"]));
        Assert.StartsWith($"{tmp["model.safetensors"]}: expected a model folder, got a file", e.Message);
    }
}
