using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Moe.Report;

/// <summary>
/// The on-disk cache of <c>moe-report</c>: one small JSON file per (model, strategy, text[, calibration])
/// under <c>DIR/&lt;model key&gt;/</c>, written atomically (temp file + rename) and never rewritten.
/// The model key hashes config.json, tokenizer.model and every safetensors file's name, size and first
/// and last MiB (which hold the header and the last tensors): cheap for 100 GB checkpoints, and any
/// re-export or edit of the weights changes it in practice.
/// </summary>
public sealed class ReportCache
{
    public string Root { get; }
    public string ModelDir { get; }

    public ReportCache(string root, string modelFolder)
    {
        Root = Path.GetFullPath(root);
        ModelDir = Path.Combine(Root, ModelKey(modelFolder));
        try { Directory.CreateDirectory(ModelDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new MergeException($"{root}: cannot create the cache folder ({e.Message})"); }
    }

    public static string DefaultRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var baseDir = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(baseDir, "mistral-merge", "moe-report");
    }

    public static string ModelKey(string folder)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) => h.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        foreach (var name in new[] { "config.json", "tokenizer.model" })
        {
            var p = Path.Combine(folder, name);
            Add(name);
            if (InputFile.IsPresent(p)) h.AppendData(InputFile.ReadAllBytes(p, name == "config.json" ? InputFile.Limits.JsonSideFile : InputFile.Limits.TokenizerModel, name));
        }
        // the weight files: safetensors, or PyTorch .bin files where a folder has no safetensors
        foreach (var p in Directory.GetFiles(folder, "*.safetensors").Concat(Directory.GetFiles(folder, "*.bin")).OrderBy(x => x, StringComparer.Ordinal))
        {
            var (handle, stamp) = InputFile.OpenRead(p);
            using (handle)
            {
                Add($"{Path.GetFileName(p)} {stamp.Length}");
                const int Part = 1 << 20;
                var buf = new byte[Part];
                int n = RandomAccess.Read(handle, buf.AsSpan(0, (int)Math.Min(Part, stamp.Length)), 0);
                h.AppendData(buf, 0, n);
                if (stamp.Length > Part)
                {
                    long tail = Math.Max(Part, stamp.Length - Part);
                    n = RandomAccess.Read(handle, buf.AsSpan(0, (int)(stamp.Length - tail)), tail);
                    h.AppendData(buf, 0, n);
                }
            }
        }
        return Convert.ToHexString(h.GetHashAndReset())[..24].ToLowerInvariant();
    }

    public static string Hash(params string[] parts) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))))[..24].ToLowerInvariant();

    /// <summary>The SHA-256 of a text file (at most <see cref="InputFile.Limits.Text"/>).</summary>
    public static string TextHash(string path) => Convert.ToHexString(SHA256.HashData(InputFile.ReadAllBytes(path, InputFile.Limits.Text, "a text"))).ToLowerInvariant();

    public string PathOf(string kind, string key) => Path.Combine(ModelDir, $"{kind}-{key}.json");

    public JsonObject? TryRead(string kind, string key)
    {
        var p = PathOf(kind, key);
        try { return InputFile.IsPresent(p) ? JsonFile.ReadObject(p, "a cache entry") : null; }
        catch (MergeException) { return null; } // a damaged entry is recomputed
    }

    public void Write(string kind, string key, JsonObject value)
    {
        var p = PathOf(kind, key);
        var tmp = p + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(tmp, IO.JsonText.Write(value));
        File.Move(tmp, p, overwrite: true);
    }

    /// <summary>A fresh folder for intermediate checkpoints (deleted by the caller).</summary>
    public string NewTempDir()
    {
        var d = Path.Combine(Root, "tmp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }
}
