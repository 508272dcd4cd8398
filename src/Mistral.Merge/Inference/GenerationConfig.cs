using System.Text.Json.Nodes;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference;

/// <summary>
/// A model's <c>generation_config.json</c>, the part generation uses: every <c>eos_token_id</c> (an int or a list; all
/// of them stop generation, as in transformers) and the sampling defaults (do_sample, temperature, top_p, top_k,
/// repetition_penalty). Absent keys are null; an absent file is <see cref="Empty"/>. A bad value is a one-line error.
/// </summary>
public sealed record GenerationConfig(string? Path, IReadOnlyList<int> EosTokenIds, bool? DoSample, double? Temperature,
    double? TopP, int? TopK, double? RepetitionPenalty)
{
    public const string FileName = "generation_config.json";
    public static GenerationConfig Empty { get; } = new(null, [], null, null, null, null, null);

    public static GenerationConfig Load(string modelFolder)
    {
        var path = System.IO.Path.Combine(modelFolder, FileName);
        if (!InputFile.IsPresent(path)) return Empty;
        var o = JsonFile.ReadObject(path, FileName);
        var eos = new List<int>();
        switch (o["eos_token_id"])
        {
            case null: break;
            case JsonArray list:
                foreach (var n in list) eos.Add((int)JsonFile.Integer(n, "each 'eos_token_id'", path, 0, TokenizerConfig.MaxTokenId));
                break;
            case var n:
                eos.Add((int)JsonFile.Integer(n, "'eos_token_id'", path, 0, TokenizerConfig.MaxTokenId));
                break;
        }
        return new(path, eos, JsonFile.Bool(o, "do_sample", path),
            JsonFile.Number(o, "temperature", path, 0, 1e6),
            // transformers refuses top_p outside [0, 1]; 0 means "off" to no one, so (0, 1] as --top-p.
            JsonFile.Number(o, "top_p", path, double.Epsilon, 1),
            (int?)JsonFile.Integer(o, "top_k", path, 0, int.MaxValue),
            JsonFile.Number(o, "repetition_penalty", path, double.Epsilon, 1e6));
    }
}

/// <summary>A sampling setting and where its value came from: "command line", "generation_config.json" or "default".</summary>
public readonly record struct Setting<T>(T Value, string Source);

/// <summary>
/// The settings generation runs with: each from the command line when given there, else from generation_config.json,
/// else this tool's default (temperature 0.7, top-k 0, top-p 1, repetition penalty 1). do_sample false in the file means
/// greedy (temperature 0) unless --temperature is given. Stop ids: the tokenizer's EOS and every eos_token_id of the file.
/// </summary>
public sealed record GenerationSettings(Setting<float> Temperature, Setting<int> TopK, Setting<float> TopP,
    Setting<float> RepetitionPenalty, IReadOnlyList<int> StopIds)
{
    public const string CommandLine = "command line", Default = "default";

    public static GenerationSettings Resolve(GenerationConfig file, float? temperature, int? topK, float? topP, float? repetitionPenalty, int tokenizerEos)
    {
        string fromFile = GenerationConfig.FileName;
        var defaults = new SamplingOptions();
        Setting<float> t = temperature is { } ct ? new(ct, CommandLine)
            : file.DoSample == false ? new(0f, $"{fromFile} (do_sample false)")
            : file.Temperature is { } ft ? new((float)ft, fromFile)
            : new(defaults.Temperature, Default);
        Setting<int> k = topK is { } ck ? new(ck, CommandLine) : file.TopK is { } fk ? new(fk, fromFile) : new(defaults.TopK, Default);
        Setting<float> p = topP is { } cp ? new(cp, CommandLine) : file.TopP is { } fp ? new((float)fp, fromFile) : new(defaults.TopP, Default);
        Setting<float> r = repetitionPenalty is { } cr ? new(cr, CommandLine)
            : file.RepetitionPenalty is { } fr ? new((float)fr, fromFile) : new(defaults.RepetitionPenalty, Default);
        return new(t, k, p, r, [.. new[] { tokenizerEos }.Concat(file.EosTokenIds).Distinct()]);
    }

    public SamplingOptions Options(ulong? seed) => new()
    {
        Temperature = Temperature.Value, TopK = TopK.Value, TopP = TopP.Value, RepetitionPenalty = RepetitionPenalty.Value, Seed = seed,
    };
}
