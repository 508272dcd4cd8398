using System.Buffers.Binary;
using System.Text;

namespace Mistral.Merge.IO.Pickle;

/// <summary>One member of a zip archive: where its (stored, uncompressed) bytes are in the file.</summary>
internal sealed record ZipEntry(string Name, long DataOffset, long Length, int Method, long CompressedLength);

/// <summary>
/// Reads the central directory of a zip archive held in memory (a mapped file), ZIP64 included, so that stored
/// members can be used in place without copying (PyTorch writes every member uncompressed). Every offset and
/// length is checked against the file; a defect is one line naming the file.
/// </summary>
internal static unsafe class ZipDirectory
{
    public const int MaxEntries = 1_000_000;

    public static Dictionary<string, ZipEntry> Read(string path, byte* p, long length)
    {
        MergeException Bad(string m) => new($"{path}: not a valid zip archive ({m})");
        ReadOnlySpan<byte> At(long offset, int n)
        {
            if (offset < 0 || n > length - offset) throw Bad($"a record at byte {offset} runs past the end of the file");
            return new ReadOnlySpan<byte>(p + offset, n);
        }

        // end of central directory: 22 bytes plus a comment of at most 65535, found scanning backwards
        long eocd = -1;
        for (long at = length - 22; at >= Math.Max(0, length - 22 - 65535); at--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(At(at, 4)) == 0x06054b50) { eocd = at; break; }
        if (eocd < 0) throw Bad("no end-of-central-directory record; truncated?");
        var e = At(eocd, 22);
        long count = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        if (BinaryPrimitives.ReadUInt16LittleEndian(e[4..]) != 0 || BinaryPrimitives.ReadUInt16LittleEndian(e[6..]) != 0)
            throw Bad("a multi-disk archive");
        long cdLimit = eocd;
        if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            // ZIP64: a 20-byte locator just before the record points at the ZIP64 end of central directory
            if (eocd < 20 || BinaryPrimitives.ReadUInt32LittleEndian(At(eocd - 20, 4)) != 0x07064b50) throw Bad("ZIP64 locator missing");
            long z = BinaryPrimitives.ReadInt64LittleEndian(At(eocd - 20 + 8, 8));
            var r = At(z, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(r) != 0x06064b50) throw Bad("ZIP64 end of central directory missing");
            count = BinaryPrimitives.ReadInt64LittleEndian(r[32..]);
            cdSize = BinaryPrimitives.ReadInt64LittleEndian(r[40..]);
            cdOffset = BinaryPrimitives.ReadInt64LittleEndian(r[48..]);
            cdLimit = z;
        }
        if (count < 0 || count > MaxEntries) throw Bad($"{count} entries (at most {MaxEntries})");
        if (cdOffset < 0 || cdSize < 0 || cdOffset > cdLimit || cdSize > cdLimit - cdOffset) throw Bad("central directory outside the file");

        var entries = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        long pos = cdOffset, cdEnd = cdOffset + cdSize;
        for (long i = 0; i < count; i++)
        {
            if (pos + 46 > cdEnd) throw Bad("central directory shorter than its entry count");
            var h = At(pos, 46);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != 0x02014b50) throw Bad($"bad central directory entry at byte {pos}");
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]), extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            long local = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            if (pos + 46 + nameLen + extraLen + commentLen > cdEnd) throw Bad($"central directory entry at byte {pos} runs past the directory");
            string name;
            try { name = new UTF8Encoding(false, true).GetString(At(pos + 46, nameLen)); }
            catch (DecoderFallbackException) { throw Bad($"entry name at byte {pos + 46} is not valid UTF-8"); }
            ReadZip64Extra(At(pos + 46 + nameLen, extraLen), ref usize, ref csize, ref local, () => Bad($"entry '{TorchGlobals.Printable(name, 80)}' has a short ZIP64 field"));
            if ((flags & 1) != 0) throw Bad($"entry '{TorchGlobals.Printable(name, 80)}' is encrypted");
            if (usize < 0 || csize < 0 || local < 0) throw Bad($"entry '{TorchGlobals.Printable(name, 80)}' has a size or offset over 2^63");
            var l = At(local, 30);
            if (BinaryPrimitives.ReadUInt32LittleEndian(l) != 0x04034b50) throw Bad($"entry '{TorchGlobals.Printable(name, 80)}' has no local header at byte {local}");
            long data = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(l[26..]) + BinaryPrimitives.ReadUInt16LittleEndian(l[28..]);
            if (csize > length - data) throw Bad($"entry '{TorchGlobals.Printable(name, 80)}' ({csize} bytes at byte {data}) runs past the end of the file");
            if (!entries.TryAdd(name, new ZipEntry(name, data, usize, method, csize))) throw Bad($"entry '{TorchGlobals.Printable(name, 80)}' appears twice");
            pos += 46 + nameLen + extraLen + commentLen;
        }
        return entries;
    }

    /// <summary>The ZIP64 extended-information field (id 1) replaces, in order, each 32-bit field that reads 0xFFFFFFFF.</summary>
    private static void ReadZip64Extra(ReadOnlySpan<byte> extra, ref long usize, ref long csize, ref long local, Func<MergeException> bad)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra), size = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (size > extra.Length - 4) throw bad();
            var f = extra.Slice(4, size);
            extra = extra[(4 + size)..];
            if (id != 1) continue;
            int at = 0;
            if (usize == 0xFFFFFFFF) usize = Next(f, ref at, bad);
            if (csize == 0xFFFFFFFF) csize = Next(f, ref at, bad);
            if (local == 0xFFFFFFFF) local = Next(f, ref at, bad);
        }
    }

    private static long Next(ReadOnlySpan<byte> f, ref int at, Func<MergeException> bad)
    {
        if (at + 8 > f.Length) throw bad();
        var v = BinaryPrimitives.ReadInt64LittleEndian(f[at..]);
        at += 8;
        return v;
    }
}
