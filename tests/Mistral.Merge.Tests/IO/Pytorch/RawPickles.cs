using System.IO.Compression;
using System.Text;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>Hand-made pickles and checkpoint files around them, for the attacks torch.save cannot be made to write.</summary>
internal static class RawPickles
{
    /// <summary>The magic-number, protocol and system-info pickles of a legacy file, taken from the torch-written fixture.</summary>
    public static byte[] LegacyHeader()
    {
        var b = File.ReadAllBytes(PytorchFixtures.PathOf("dtypes-legacy.bin"));
        return b[..137]; // three pickles: bytes 0-14, 15-20, 21-136 (see pickletools.dis)
    }

    /// <summary>A legacy checkpoint whose object pickle is <paramref name="pickle"/>, with an empty storage list.</summary>
    public static byte[] Legacy(byte[] pickle) => [.. LegacyHeader(), .. pickle, .. Ops("\u0080\u0002]q\u0000.")];

    /// <summary>Opcodes written as text: ASCII opcodes and arguments, with \xNN for other bytes.</summary>
    public static byte[] Ops(string s) => Encoding.Latin1.GetBytes(s);

    /// <summary>The members of a torch-written zip fixture, in order.</summary>
    public static List<(string Name, byte[] Bytes)> Members(string fixture)
    {
        using var z = ZipFile.OpenRead(PytorchFixtures.PathOf(fixture));
        return z.Entries.Select(e =>
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return (e.FullName, ms.ToArray());
        }).ToList();
    }

    /// <summary>A zip archive of <paramref name="members"/>, stored (uncompressed) unless listed in <paramref name="deflated"/>.</summary>
    public static byte[] Zip(IEnumerable<(string Name, byte[] Bytes)> members, params string[] deflated)
    {
        var ms = new MemoryStream();
        using (var z = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, bytes) in members)
            {
                var e = z.CreateEntry(name, deflated.Contains(name) ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(bytes);
            }
        return ms.ToArray();
    }

    /// <summary>
    /// A ZIP64 archive of stored <paramref name="members"/>, every size and offset in the ZIP64 fields (as torch's
    /// writer does for files over 4 GB), so that the ZIP64 path is tested on a few KB.
    /// </summary>
    public static byte[] Zip64(IEnumerable<(string Name, byte[] Bytes)> members)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        var central = new List<(byte[] Name, long Offset, long Length)>();
        foreach (var (name, bytes) in members)
        {
            var n = Encoding.UTF8.GetBytes(name);
            central.Add((n, ms.Position, bytes.Length));
            w.Write(0x04034b50); w.Write((short)45); w.Write((short)0); w.Write((short)0); w.Write(0); w.Write(0);
            w.Write(uint.MaxValue); w.Write(uint.MaxValue); w.Write((short)n.Length); w.Write((short)20);
            w.Write(n); w.Write((short)1); w.Write((short)16); w.Write((long)bytes.Length); w.Write((long)bytes.Length);
            w.Write(bytes);
        }
        long cdStart = ms.Position;
        foreach (var (n, offset, length) in central)
        {
            w.Write(0x02014b50); w.Write((short)45); w.Write((short)45); w.Write((short)0); w.Write((short)0); w.Write(0); w.Write(0);
            w.Write(uint.MaxValue); w.Write(uint.MaxValue); w.Write((short)n.Length); w.Write((short)28); w.Write((short)0);
            w.Write((short)0); w.Write((short)0); w.Write(0); w.Write(uint.MaxValue);
            w.Write(n); w.Write((short)1); w.Write((short)24); w.Write(length); w.Write(length); w.Write(offset);
        }
        long cdSize = ms.Position - cdStart, z64 = ms.Position;
        w.Write(0x06064b50); w.Write(44L); w.Write((short)45); w.Write((short)45); w.Write(0); w.Write(0);
        w.Write((long)central.Count); w.Write((long)central.Count); w.Write(cdSize); w.Write(cdStart);
        w.Write(0x07064b50); w.Write(0); w.Write(z64); w.Write(1);
        w.Write(0x06054b50); w.Write((short)0); w.Write((short)0); w.Write(ushort.MaxValue); w.Write(ushort.MaxValue);
        w.Write(uint.MaxValue); w.Write(uint.MaxValue); w.Write((short)0);
        w.Flush();
        return ms.ToArray();
    }
}
