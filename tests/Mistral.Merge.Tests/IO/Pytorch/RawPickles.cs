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
}
