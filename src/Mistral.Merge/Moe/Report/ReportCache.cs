using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

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
            if (File.Exists(p)) h.AppendData(File.ReadAllBytes(p));
        }
        foreach (var p in Directory.GetFiles(folder, "*.safetensors").OrderBy(x => x, StringComparer.Ordinal))
        {
            using var f = File.OpenRead(p);
            Add($"{Path.GetFileName(p)} {f.Length}");
            const int Part = 1 << 20;
            var buf = new byte[Part];
            int n = f.ReadAtLeast(buf, (int)Math.Min(Part, f.Length), throwOnEndOfStream: false);
            h.AppendData(buf, 0, n);
            if (f.Length > Part)
            {
                f.Seek(Math.Max(Part, f.Length - Part), SeekOrigin.Begin);
                n = f.ReadAtLeast(buf, (int)(f.Length - f.Position), throwOnEndOfStream: false);
                h.AppendData(buf, 0, n);
            }
        }
        return Convert.ToHexString(h.GetHashAndReset())[..24].ToLowerInvariant();
    }

    public static string Hash(params string[] parts) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))))[..24].ToLowerInvariant();

    public static string FileHash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    public string PathOf(string kind, string key) => Path.Combine(ModelDir, $"{kind}-{key}.json");

    public JsonObject? TryRead(string kind, string key)
    {
        var p = PathOf(kind, key);
        if (!File.Exists(p)) return null;
        try { return JsonNode.Parse(File.ReadAllText(p)) as JsonObject; }
        catch (JsonException) { return null; } // a damaged entry is recomputed
    }

    public void Write(string kind, string key, JsonObject value)
    {
        var p = PathOf(kind, key);
        var tmp = p + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(tmp, value.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
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
