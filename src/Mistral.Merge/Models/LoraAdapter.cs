using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

/// <summary>
/// A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) applied to a base model's tensors row by row,
/// so that a <c>model+adapter</c> input streams in bounded memory: for each adapted module
/// <c>W += s·(B·A)</c> with <c>s = lora_alpha / r</c> (<c>/ √r</c> with use_rslora), r and alpha per module from
/// rank_pattern / alpha_pattern; transposed for <c>fan_in_fan_out</c> and for embeddings (lora_embedding_A/B); a bias on
/// lora_B adds <c>s·bias</c>; DoRA rescales each output row to <c>m / ‖W + s·BA‖</c>; modules_to_save replace the module.
/// Everything is computed in float32 and rounded once by the caller (PEFT adds in the base dtype: a documented deviation).
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";
    private const string Prefix = "base_model.model.";

    /// <summary>The update of one base tensor: <c>Δ = Scale·(B·A)</c>, A [rank, in], B [out, rank] as float32.</summary>
    private sealed record Module(float[] A, float[] B, int Rank, int Out, int In, float Scale, bool Transposed, float[]? Magnitude);

    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, Module> _weights = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (float[] Bias, float Scale)> _biases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorInfo> _replacements = new(StringComparer.Ordinal);

    public string Path { get; }

    private LoraAdapter(string path, SafetensorsFile file)
    {
        Path = path;
        _file = file;
    }

    /// <summary>True when the folder holds a PEFT adapter (its config file).</summary>
    public static bool IsAdapter(string folder) => InputFile.IsPresent(System.IO.Path.Combine(folder, ConfigFileName));

    public static LoraAdapter Open(string folder)
    {
        var configPath = System.IO.Path.Combine(folder, ConfigFileName);
        var cfg = JsonFile.ReadObject(configPath, ConfigFileName);
        var weightsPath = System.IO.Path.Combine(folder, WeightsFileName);
        InputFile.Require(weightsPath);
        var file = SafetensorsFile.Open(weightsPath);
        var adapter = new LoraAdapter(folder, file);
        try { adapter.Load(cfg, configPath); }
        catch { adapter.Dispose(); throw; }
        return adapter;
    }

    private void Load(JsonObject cfg, string where)
    {
        int r = (int)(JsonFile.Integer(cfg, "r", where, 1, 1 << 20) ?? 8);
        double alpha = JsonFile.Number(cfg, "lora_alpha", where, -1e9, 1e9) ?? 8;
        bool rs = JsonFile.Bool(cfg, "use_rslora", where) ?? false;
        bool fanInFanOut = JsonFile.Bool(cfg, "fan_in_fan_out", where) ?? false;
        var rankPattern = Patterns(cfg, "rank_pattern", where);
        var alphaPattern = Patterns(cfg, "alpha_pattern", where);

        var byName = _file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var t in _file.Tensors)
        {
            if (!t.Name.StartsWith(Prefix, StringComparison.Ordinal))
                throw new MergeException($"{_file.Path}: tensor '{t.Name}' is not a PEFT adapter tensor (expected names starting '{Prefix}')");
            var rest = t.Name[Prefix.Length..];
            bool embedding = rest.EndsWith(".lora_embedding_A", StringComparison.Ordinal);
            if (!embedding && !rest.EndsWith(".lora_A.weight", StringComparison.Ordinal))
            {
                if (!IsPartOfAModule(rest)) _replacements[rest] = t; // modules_to_save: the adapter's own copy of the tensor
                continue;
            }
            var module = rest[..rest.LastIndexOf(".lora_", StringComparison.Ordinal)];
            var bName = Prefix + module + (embedding ? ".lora_embedding_B" : ".lora_B.weight");
            if (!byName.TryGetValue(bName, out var bInfo))
                throw new MergeException($"{_file.Path}: '{t.Name}' has no matching '{bName}'");
            int rank = (int)Lookup(rankPattern, module, r);
            double a = Lookup(alphaPattern, module, alpha);
            float scale = (float)(rs ? a / Math.Sqrt(rank) : a / rank);
            // A [rank, in], B [out, rank] (embeddings: A [rank, vocab], B [hidden, rank], the delta transposed)
            if (t.Rank != 2 || bInfo.Rank != 2 || t.Shape[0] != rank || bInfo.Shape[1] != rank)
                throw new MergeException($"{_file.Path}: '{module}': lora_A {t.ShapeText} and lora_B {bInfo.ShapeText} do not have rank {rank}");
            var aT = Read(t);
            var bT = Read(bInfo);
            float[]? magnitude = null;
            if (byName.TryGetValue(Prefix + module + ".lora_magnitude_vector", out var mInfo)
                || byName.TryGetValue(Prefix + module + ".lora_magnitude_vector.weight", out mInfo))
            {
                if (embedding || fanInFanOut) throw new MergeException($"{_file.Path}: '{module}': DoRA on an embedding or a fan_in_fan_out layer is not supported");
                magnitude = Read(mInfo);
            }
            _weights[module + ".weight"] = new Module(aT, bT, rank, (int)bInfo.Shape[0], (int)t.Shape[1], scale, embedding || fanInFanOut, magnitude);
            if (byName.TryGetValue(Prefix + module + ".lora_B.bias", out var biasInfo)) _biases[module + ".bias"] = (Read(biasInfo), scale);
        }
    }

    private static bool IsPartOfAModule(string rest) =>
        rest.Contains(".lora_", StringComparison.Ordinal);

    private static List<(Regex Key, double Value)> Patterns(JsonObject cfg, string key, string where)
    {
        var list = new List<(Regex, double)>();
        if (cfg[key] is not JsonObject o) return list;
        foreach (var (k, v) in o)
        {
            double value = v is JsonValue jv && jv.TryGetValue<double>(out var d) ? d : throw new MergeException($"{where}: {key}.{k} must be a number");
            // PEFT: the module name is the key or ends in ".key" (the key is a regular expression)
            try { list.Add((new Regex($"^(?:.*\\.)?(?:{k})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)), value)); }
            catch (ArgumentException e) { throw new MergeException($"{where}: {key} key '{k}' is not a regular expression ({e.Message})"); }
        }
        return list;
    }

    private static double Lookup(List<(Regex Key, double Value)> patterns, string module, double fallback)
    {
        try
        {
            foreach (var (key, value) in patterns) if (key.IsMatch(module)) return value;
        }
        catch (RegexMatchTimeoutException e) { throw new MergeException($"pattern '{e.Pattern}' took too long to match '{module}'"); }
        return fallback;
    }

    private float[] Read(TensorInfo t)
    {
        var dst = new float[t.ElementCount];
        Conversions.ToSingle(_file.GetBytes(t), t.DType, dst);
        return dst;
    }

    /// <summary>True when the adapter adds an update to <paramref name="tensor"/> (not a replacement).</summary>
    public bool Changes(string tensor) => _weights.ContainsKey(tensor) || _biases.ContainsKey(tensor);

    /// <summary>The adapter's weights file (the source of its modules_to_save replacements).</summary>
    public SafetensorsFile File => _file;

    /// <summary>The base tensors the adapter changes or replaces.</summary>
    public IEnumerable<string> AdaptedTensors => _weights.Keys.Concat(_biases.Keys).Concat(_replacements.Keys);

    /// <summary>The adapter's replacement of a whole tensor (modules_to_save), or null.</summary>
    public TensorInfo? Replacement(string tensor) => _replacements.GetValueOrDefault(tensor);

    public ReadOnlySpan<byte> ReplacementBytes(TensorInfo t) => _file.GetBytes(t);

    /// <summary>Checks that the adapter fits the base tensor's shape (once, before any row is read).</summary>
    public void CheckShape(string tensor, long[] shape)
    {
        if (_weights.TryGetValue(tensor, out var m))
        {
            long rows = m.Transposed ? m.In : m.Out, cols = m.Transposed ? m.Out : m.In;
            if (shape.Length != 2 || shape[0] != rows || shape[1] != cols)
                throw new MergeException($"{Path}: the adapter's update of '{tensor}' is [{rows}, {cols}], the base tensor is [{string.Join(", ", shape)}]");
        }
        if (_biases.TryGetValue(tensor, out var b) && (shape.Length != 1 || shape[0] != b.Bias.Length))
            throw new MergeException($"{Path}: the adapter's bias of '{tensor}' has {b.Bias.Length} values, the base tensor is [{string.Join(", ", shape)}]");
    }

    /// <summary>
    /// Adds the update to rows <paramref name="row0"/>.. of <paramref name="tensor"/>, given as float32 [rows, cols] in
    /// <paramref name="w"/> (a 1-D bias is one row). No-op for a tensor the adapter does not change.
    /// </summary>
    public void Apply(string tensor, long row0, int rows, Span<float> w)
    {
        if (_biases.TryGetValue(tensor, out var bias))
        {
            for (int i = 0; i < w.Length; i++) w[i] += bias.Scale * bias.Bias[row0 + i];
            return;
        }
        if (!_weights.TryGetValue(tensor, out var m)) return;
        int cols = w.Length / rows;
        var d = new float[cols];
        for (int i = 0; i < rows; i++)
        {
            long row = row0 + i;
            var wRow = w.Slice(i * cols, cols);
            // d = (B·A)[row, :] (transposed: (B·A)[:, row]) in float32, then W += s·d, as PEFT's (B @ A) * s
            Array.Clear(d);
            if (!m.Transposed)
            {
                for (int k = 0; k < m.Rank; k++)
                {
                    float b = m.B[row * m.Rank + k];
                    var aRow = m.A.AsSpan(k * m.In, m.In);
                    for (int j = 0; j < cols; j++) d[j] += b * aRow[j];
                }
            }
            else
            {
                for (int j = 0; j < cols; j++)
                {
                    float sum = 0;
                    for (int k = 0; k < m.Rank; k++) sum += m.B[j * m.Rank + k] * m.A[k * m.In + row];
                    d[j] = sum;
                }
            }
            for (int j = 0; j < cols; j++) wRow[j] += m.Scale * d[j];
            if (m.Magnitude != null)
            {
                double norm = 0;
                foreach (var v in wRow) norm += (double)v * v;
                float f = (float)(m.Magnitude[row] / Math.Sqrt(norm));
                for (int j = 0; j < cols; j++) wRow[j] *= f;
            }
        }
    }

    public void Dispose() => _file.Dispose();
}
