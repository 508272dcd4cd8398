namespace Mistral.Merge.Recipes;

/// <summary>A model as written in a recipe (resolved to a folder later by <see cref="ModelResolver"/>).</summary>
public sealed record ModelRef(string Text, Mark Mark);

/// <summary>Named parameters at one level (global, slice or source), each with its key's position.</summary>
public sealed class ParamSet
{
    public static readonly ParamSet Empty = new();
    public Dictionary<string, (ParamValue Value, Mark KeyMark)> Items { get; } = new(StringComparer.Ordinal);
    /// <summary>Names given with a value that was reported as invalid (not reported again as missing).</summary>
    public HashSet<string> Invalid { get; } = new(StringComparer.Ordinal);
    /// <summary>True when the recipe gives this parameter here, valid or not.</summary>
    public bool Mentions(string name) => Items.ContainsKey(name) || Invalid.Contains(name);
    public bool TryGet(string name, out ParamValue value)
    {
        if (Items.TryGetValue(name, out var e)) { value = e.Value; return true; }
        value = null!; return false;
    }
}

public sealed class SourceSpec
{
    public required ModelRef Model { get; init; }
    /// <summary>[start, end) or null for "all layers" (the <c>models:</c> form).</summary>
    public (int Start, int End)? LayerRange { get; init; }
    public Mark LayerRangeMark { get; init; }
    public ParamSet Parameters { get; init; } = ParamSet.Empty;
    public Mark Mark { get; init; }
}

public sealed class SliceSpec
{
    public List<SourceSpec> Sources { get; } = new();
    public ParamSet Parameters { get; init; } = ParamSet.Empty;
    public ModelRef? BaseModel { get; init; }
    public Mark Mark { get; init; }
}

public enum TokenizerMode { Base, Union, Model }

/// <summary>Where a token's default embedding comes from (<c>tokenizer.tokens.TOKEN.source</c>).</summary>
public enum TokenSourceKind { Model, ModelToken, Zero }

/// <summary>One entry of <c>tokenizer.tokens</c>: the token, the source of its default embedding, and <c>force</c>.</summary>
public sealed class TokenSpec
{
    public required string Token { get; init; }
    public required Mark Mark { get; init; }
    public TokenSourceKind Kind { get; init; }
    /// <summary>The model of a <c>MODEL</c> or <c>model_token</c> source.</summary>
    public ModelRef? Model { get; init; }
    /// <summary><c>model_token</c>: the model's original row (token_id), or the row of this token in its own tokenizer.</summary>
    public int? TokenId { get; init; }
    public string? SourceToken { get; init; }
    public bool Force { get; init; }
}

/// <summary><c>tokenizer_source: base | union | MODEL</c> or the <c>tokenizer: {source, tokens, pad_to_multiple_of}</c> block.</summary>
public sealed class TokenizerSpec
{
    public TokenizerMode Mode { get; init; }
    /// <summary>The source model when <see cref="Mode"/> is <see cref="TokenizerMode.Model"/>.</summary>
    public ModelRef? Model { get; init; }
    public List<TokenSpec> Tokens { get; } = new();
    public int PadToMultipleOf { get; set; } = 1;
    public Mark Mark { get; init; }
}

/// <summary>A parsed, normalised recipe (mergekit schema). <c>models:</c> becomes one slice.</summary>
public sealed class Recipe
{
    public required string Path { get; init; }
    public required string Label { get; init; }
    public required string Text { get; init; }
    public string Folder => System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
    public string Method { get; set; } = "";
    public Mark MethodMark { get; set; }
    public ModelRef? BaseModel { get; set; }
    public List<SliceSpec> Slices { get; } = new();
    /// <summary>True when written with <c>models:</c> (one slice covering every layer).</summary>
    public bool FromModels { get; set; }
    public ParamSet Parameters { get; set; } = ParamSet.Empty;
    public DType? DType { get; set; }
    public DType? OutDType { get; set; }
    /// <summary>The model whose tokenizer is the output's (<c>tokenizer_source: MODEL</c>), else null.</summary>
    public ModelRef? TokenizerSource => Tokenizer?.Model;
    /// <summary>The tokenizer to build (<c>tokenizer_source</c> or the <c>tokenizer:</c> block); null: copy the donor's as it is.</summary>
    public TokenizerSpec? Tokenizer { get; set; }
    public string? ChatTemplate { get; set; }
    public string? Name { get; set; }
    public Mark RootMark { get; set; } = new(1, 1);
    /// <summary>Neither 'models' nor 'slices' given: a problem unless the method rewrites the base_model alone (the planner knows).</summary>
    public bool SourcesMissing { get; set; }

    /// <summary>Every distinct model text, in first-mention order.</summary>
    public IEnumerable<ModelRef> AllModelRefs()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (BaseModel != null && seen.Add(BaseModel.Text)) yield return BaseModel;
        foreach (var s in Slices)
        {
            if (s.BaseModel != null && seen.Add(s.BaseModel.Text)) yield return s.BaseModel;
            foreach (var src in s.Sources)
                if (seen.Add(src.Model.Text)) yield return src.Model;
        }
        if (TokenizerSource != null && seen.Add(TokenizerSource.Text)) yield return TokenizerSource;
    }
}
