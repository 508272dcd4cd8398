using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Pickle;

namespace Mistral.Merge.Models;

/// <summary>
/// A checkpoint folder: one <c>model.safetensors</c>, shards listed by
/// <c>model.safetensors.index.json</c>, or several <c>*.safetensors</c> without an index; without any safetensors,
/// PyTorch's <c>pytorch_model.bin</c> or shards listed by <c>pytorch_model.bin.index.json</c>, read through the
/// restricted unpickler (<see cref="PytorchCheckpoint"/>). Everything is validated on open; tensor bytes stay memory-mapped.
/// </summary>
public sealed class ModelFolder : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> _tensors;

    public string Path { get; }
    public ModelConfig? Config { get; }
    public IReadOnlyList<SafetensorsFile> Files => _files;
    /// <summary>Tensor names in natural model order (embeddings, layers by number, head).</summary>
    public IReadOnlyList<string> TensorNames { get; }
    public string Layout { get; }
    /// <summary>The declaration whose names this model uses: its config's architecture, else <see cref="Architecture.Default"/>.</summary>
    public Architecture Names => Config?.Names ?? Architecture.Default;

    private ModelFolder(string path, ModelConfig? config, List<SafetensorsFile> files, string layout)
    {
        Path = path; Config = config; _files = files; Layout = layout;
        _tensors = new(StringComparer.Ordinal);
        foreach (var f in files)
            foreach (var t in f.Tensors)
                if (!_tensors.TryAdd(t.Name, (f, t)))
                    throw new MergeException($"{path}: tensor '{t.Name}' appears in both {System.IO.Path.GetFileName(_tensors[t.Name].File.Path)} and {System.IO.Path.GetFileName(f.Path)}");
        TensorNames = Names.SortNatural(_tensors.Keys);
    }

    public const string BinFileName = "pytorch_model.bin";
    public const string BinIndexFileName = "pytorch_model.bin.index.json";

    public static ModelFolder Open(string path)
    {
        if (File.Exists(path) && (path.EndsWith(".safetensors", StringComparison.Ordinal) || path.EndsWith(".bin", StringComparison.Ordinal)))
            throw new MergeException($"{path}: expected a model folder, got a file (pass its folder: {System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))})");
        if (!Directory.Exists(path)) throw new MergeException($"{path}: model folder not found");
        var full = System.IO.Path.GetFullPath(path);
        PartialMarker.ThrowIfPartial(full, path);
        var configPath = System.IO.Path.Combine(full, "config.json");
        var config = InputFile.IsPresent(configPath) ? ModelConfig.Load(configPath) : null;

        var files = new List<SafetensorsFile>();
        try
        {
            var indexPath = System.IO.Path.Combine(full, CheckpointWriter.IndexFileName);
            var binIndexPath = System.IO.Path.Combine(full, BinIndexFileName);
            string layout;
            if (InputFile.IsPresent(indexPath))
                layout = OpenShards(indexPath, full, SafetensorsFile.Open, files);
            else if (File.Exists(System.IO.Path.Combine(full, CheckpointWriter.SingleFileName)))
            {
                files.Add(SafetensorsFile.Open(System.IO.Path.Combine(full, CheckpointWriter.SingleFileName)));
                layout = "single file";
            }
            else if (Directory.GetFiles(full, "*.safetensors").OrderBy(s => s, StringComparer.Ordinal).ToList() is { Count: > 0 } all)
            {
                foreach (var f in all) files.Add(SafetensorsFile.Open(f));
                layout = $"{files.Count} files, no index";
            }
            else if (InputFile.IsPresent(binIndexPath))
                layout = OpenShards(binIndexPath, full, PytorchCheckpoint.Open, files) + ", PyTorch .bin";
            else if (File.Exists(System.IO.Path.Combine(full, BinFileName)))
            {
                files.Add(PytorchCheckpoint.Open(System.IO.Path.Combine(full, BinFileName)));
                layout = $"single file, {files[0].Format} format";
            }
            else
                throw new MergeException($"{path}: no model.safetensors, {CheckpointWriter.IndexFileName}, *.safetensors, {BinFileName} or {BinIndexFileName} in this folder");
            return new ModelFolder(full, config, files, layout);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Opens the shards an index lists (into <paramref name="files"/>, so that they are closed on error) and checks them against it.</summary>
    private static string OpenShards(string indexPath, string full, Func<string, SafetensorsFile> open, List<SafetensorsFile> files)
    {
        var map = ReadIndex(indexPath, full);
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var shard in map.Values.Distinct().OrderBy(s => s, StringComparer.Ordinal))
        {
            var shardPath = System.IO.Path.Combine(full, shard);
            if (!File.Exists(shardPath)) throw new MergeException($"{indexPath}: shard '{shard}' is listed but does not exist");
            var f = open(shardPath);
            files.Add(f);
            shards[shard] = f;
        }
        CheckIndexAgainstShards(indexPath, map, shards);
        return $"sharded ({files.Count} files, index)";
    }

    private static Dictionary<string, string> ReadIndex(string indexPath, string folder)
    {
        var root = JsonFile.Parse(InputFile.ReadAllBytes(indexPath, InputFile.Limits.JsonSideFile, "a shard index"), indexPath);
        if (root is not JsonObject top || top["weight_map"] is not JsonObject wm) throw new MergeException($"{indexPath}: missing 'weight_map' object");
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        var folderFull = System.IO.Path.GetFullPath(folder).TrimEnd('/') + "/";
        foreach (var (name, value) in wm)
        {
            if (value is not JsonValue v || !v.TryGetValue<string>(out var shard)) throw new MergeException($"{indexPath}: weight_map entry '{name}' is not a file name");
            if (shard.Length == 0) throw new MergeException($"{indexPath}: tensor '{name}' names an empty shard file name");
            if (System.IO.Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains("..") || shard.Contains('\0'))
                throw new MergeException($"{indexPath}: tensor '{name}' names shard '{shard}', a path outside the model folder");
            var resolved = System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, shard));
            if (!resolved.StartsWith(folderFull, StringComparison.Ordinal))
                throw new MergeException($"{indexPath}: tensor '{name}' names shard '{shard}', a path outside the model folder");
            map[name] = shard; // a tensor listed twice is a duplicate key, refused when parsing
        }
        if (map.Count == 0) throw new MergeException($"{indexPath}: weight_map is empty");
        return map;
    }

    private static void CheckIndexAgainstShards(string indexPath, Dictionary<string, string> map, Dictionary<string, SafetensorsFile> shards)
    {
        var indexName = System.IO.Path.GetFileName(indexPath);
        foreach (var (rel, f) in shards)
            foreach (var t in f.Tensors)
            {
                if (!map.TryGetValue(t.Name, out var listed))
                    throw new MergeException($"{f.Path}: tensor '{t.Name}' is in the shard but not in {indexName}");
                if (listed != rel)
                    throw new MergeException($"{f.Path}: tensor '{t.Name}' is in this shard but {indexName} says it is in '{listed}'");
            }
        foreach (var (name, rel) in map)
            if (!shards[rel].Contains(name))
                throw new MergeException($"{indexPath}: tensor '{name}' is listed in '{rel}' but that shard does not contain it");
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorInfo Info(string name) => Lookup(name).Info;

    public bool TryGet(string name, out SafetensorsFile file, out TensorInfo info)
    {
        if (_tensors.TryGetValue(name, out var e)) { file = e.File; info = e.Info; return true; }
        file = null!; info = null!; return false;
    }

    public (SafetensorsFile File, TensorInfo Info) Lookup(string name)
        => _tensors.TryGetValue(name, out var e) ? e : throw new MergeException($"{Path}: model has no tensor '{name}'");

    public ReadOnlySpan<byte> GetBytes(string name) { var (f, t) = Lookup(name); return f.GetBytes(t); }

    /// <summary>Reads a F32/F16/BF16 tensor widened to float32 into <paramref name="dst"/>.</summary>
    public void ReadSingle(string name, Span<float> dst)
    {
        var (f, t) = Lookup(name);
        if (!t.DType.IsFloatMath() && t.DType != DType.F64)
            throw new MergeException($"{f.Path}: tensor '{name}' has dtype {t.DType}, which has no float math");
        Conversions.ToSingle(f.GetBytes(t), t.DType, dst[..(int)t.ElementCount]);
    }

    public float[] ReadSingle(string name)
    {
        var t = Info(name);
        var a = new float[t.ElementCount];
        ReadSingle(name, a);
        return a;
    }

    /// <summary>Fails with one line when a file of the model was modified since it was opened (see <see cref="SafetensorsFile.CheckUnchanged"/>).</summary>
    public void CheckUnchanged()
    {
        foreach (var f in _files) f.CheckUnchanged();
    }

    public long TotalBytes => _tensors.Values.Sum(e => e.Info.ByteLength);
    public long ParameterCount => _tensors.Values.Sum(e => e.Info.ElementCount);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
