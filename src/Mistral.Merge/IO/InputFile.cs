using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO;

/// <summary>
/// The one way the library opens a file a user gave it: symbolic links are followed (lengths and contents come
/// from the target), anything but a regular file (a directory, FIFO, device or socket, which would block or never
/// end) is refused up front with one line, and whole-file reads are capped by a size limit named in the error.
/// </summary>
public static class InputFile
{
    /// <summary>Size limits of the files read whole into memory (weights are memory-mapped and have none).</summary>
    public static class Limits
    {
        public const long JsonSideFile = 64L << 20;     // config.json, tokenizer_config.json, tokenizer.json (Gemma's is 34 MB), index
        public const long TokenizerModel = 64L << 20;   // sentencepiece tokenizer.model (Gemma's is 4 MB)
        public const long Recipe = 4L << 20;            // a YAML recipe (real ones are a few KB)
        public const long Text = 64L << 20;             // an evaluation / calibration / prompt text (WikiText-2 test: 1.3 MB)
    }

    /// <summary>The stamp of the regular file <paramref name="path"/> names; a one-line error for anything else.</summary>
    public static FileStamp Require(string path)
    {
        FileStamp s;
        try { s = FileStamp.OfPath(path); }
        catch (IOException e) { throw new MergeException($"{path}: cannot read ({e.Message})"); }
        if (s.Kind == FileKind.Missing) throw new MergeException($"{path}: file not found");
        if (s.Kind != FileKind.Regular) throw new MergeException($"{path}: is {FileStamp.Describe(s.Kind)}, not a regular file");
        return s;
    }

    /// <summary>
    /// For optional files: false when nothing is at <paramref name="path"/>, true for a regular file, and the
    /// one-line error of <see cref="Require"/> for anything else (a FIFO named config.json must not be skipped silently).
    /// </summary>
    public static bool IsPresent(string path)
    {
        if (!Path.Exists(path)) return false;
        Require(path);
        return true;
    }

    /// <summary>Opens a regular file for reading; returns the handle and the stamp of the opened file.</summary>
    public static (SafeFileHandle Handle, FileStamp Stamp) OpenRead(string path)
    {
        Require(path);
        SafeFileHandle h;
        try { h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        { throw new MergeException($"{path}: cannot open ({e.Message})"); }
        try
        {
            var s = FileStamp.OfHandle(h, path);
            if (s.Kind != FileKind.Regular) throw new MergeException($"{path}: is {FileStamp.Describe(s.Kind)}, not a regular file");
            return (h, s);
        }
        catch (Exception e)
        {
            h.Dispose();
            if (e is IOException io) throw new MergeException($"{path}: cannot read ({io.Message})");
            throw;
        }
    }

    /// <summary>Reads a whole regular file of at most <paramref name="limit"/> bytes (<paramref name="what"/> names it in the error).</summary>
    public static byte[] ReadAllBytes(string path, long limit, string what)
    {
        var (h, stamp) = OpenRead(path);
        using (h)
        {
            if (stamp.Length > limit)
                throw new MergeException($"{path}: {ByteSize.Format(stamp.Length)} is over the {ByteSize.Format(limit)} limit for {what}");
            try
            {
                // Read to the end (not just the measured length): a file that grows meanwhile is still capped.
                var buffer = new byte[Math.Max(stamp.Length, 0) + 1];
                int total = 0;
                while (true)
                {
                    if (total == buffer.Length)
                    {
                        if (buffer.Length > limit) throw new MergeException($"{path}: grew past the {ByteSize.Format(limit)} limit for {what} while being read");
                        Array.Resize(ref buffer, (int)Math.Min(limit + 1, Math.Max(4096L, buffer.Length * 2L)));
                    }
                    int n = RandomAccess.Read(h, buffer.AsSpan(total), total);
                    if (n == 0) break;
                    total += n;
                }
                if (total > limit) throw new MergeException($"{path}: grew past the {ByteSize.Format(limit)} limit for {what} while being read");
                return total == buffer.Length ? buffer : buffer[..total];
            }
            catch (IOException e) { throw new MergeException($"{path}: cannot read ({e.Message})"); }
        }
    }

    /// <summary>Reads a whole regular text file as UTF-8 (a leading byte-order mark dropped; invalid bytes become U+FFFD).</summary>
    public static string ReadAllText(string path, long limit, string what) =>
        Encoding.UTF8.GetString(WithoutByteOrderMark(ReadAllBytes(path, limit, what)));

    /// <summary>Reads a whole regular text file that must be valid UTF-8.</summary>
    public static string ReadAllTextStrict(string path, long limit, string what)
    {
        var span = WithoutByteOrderMark(ReadAllBytes(path, limit, what));
        try { return new UTF8Encoding(false, true).GetString(span); }
        catch (DecoderFallbackException) { throw new MergeException($"{path}: {what} is not valid UTF-8"); }
    }

    private static ReadOnlySpan<byte> WithoutByteOrderMark(byte[] bytes) =>
        bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes.AsSpan(3) : bytes;
}
