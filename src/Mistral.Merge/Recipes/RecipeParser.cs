using System.Globalization;
using Mistral.Merge.IO;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mistral.Merge.Recipes;

/// <summary>
/// Parses a mergekit-style YAML recipe with YamlDotNet's representation model, so that every
/// node keeps its line and column. Strict: unknown keys, wrong types and malformed values are
/// collected into <see cref="RecipeProblems"/> rather than thrown one at a time.
/// </summary>
public static class RecipeParser
{
    public static readonly string[] TopKeys =
        ["merge_method", "base_model", "models", "slices", "parameters", "dtype", "out_dtype", "tokenizer_source", "tokenizer", "chat_template", "name"];
    public static readonly string[] ModelEntryKeys = ["model", "parameters"];
    public static readonly string[] SliceKeys = ["sources", "parameters", "base_model"];
    public static readonly string[] SourceKeys = ["model", "layer_range", "parameters"];
    public static readonly string[] ConditionKeys = ["filter", "value"];
    public static readonly string[] TokenizerKeys = ["source", "tokens", "pad_to_multiple_of"];
    public static readonly string[] TokenKeys = ["source", "force"];
    public static readonly string[] TokenSourceKeys = ["kind", "model", "token_id", "token"];

    /// <summary>Reads and parses <paramref name="path"/>; problems are added to <paramref name="problems"/>.</summary>
    public static Recipe ParseFile(string path, RecipeProblems problems)
    {
        if (Directory.Exists(path)) throw new MergeException($"{path}: is a folder; expected a recipe .yml file");
        if (!Path.Exists(path)) throw new MergeException($"{path}: recipe file not found");
        return Parse(InputFile.ReadAllTextStrict(path, InputFile.Limits.Recipe, "a recipe"), path, problems);
    }

    /// <param name="ownText">the recipe as written into the output (a stage's own document); default <paramref name="text"/></param>
    public static Recipe Parse(string text, string path, RecipeProblems problems, string? ownText = null)
    {
        var recipe = new Recipe { Path = path, Label = problems.FileLabel, Text = ownText ?? text };
        if (YamlGuard.Check(text) is var (at, why))
        {
            problems.Add(at, why);
            return recipe;
        }
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            var msg = (e.InnerException?.Message ?? e.Message).ReplaceLineEndings(" ");
            problems.Add(Mark.From(e.Start), $"YAML syntax error: {msg}");
            return recipe;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            problems.Add(new Mark(1, 1), "the recipe is empty (expected merge_method, models or slices, ...)");
            return recipe;
        }
        if (stream.Documents.Count > 1)
            problems.Add(Mark.From(stream.Documents[1].RootNode.Start), "the recipe holds more than one YAML document");
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            problems.Add(Mark.From(stream.Documents[0].RootNode.Start), "the recipe must be a mapping of keys (merge_method, models or slices, parameters, ...)");
            return recipe;
        }
        recipe.RootMark = Mark.From(root.Start);
        new Reader(problems).ReadTop(root, recipe);
        return recipe;
    }

    /// <summary>YAML 1.1 scalar typing as PyYAML does it (null, bool, number, else string); null for a non-scalar.</summary>
    public static object? ScalarOf(YamlNode n) => Reader.Scalar(n);

    private sealed class Reader(RecipeProblems p)
    {
        public void ReadTop(YamlMappingNode root, Recipe r)
        {
            YamlNode? models = null, slices = null;
            Mark modelsKey = default, slicesKey = default;
            foreach (var (k, v) in Entries(root, TopKeys, "top-level key"))
            {
                var key = ((YamlScalarNode)k).Value!;
                switch (key)
                {
                    case "merge_method":
                        if (String(v, "merge_method") is { } m)
                        {
                            r.Method = m; r.MethodMark = Mark.From(v.Start);
                            if (m.Trim().Length == 0) p.Add(r.MethodMark, "merge_method is empty: name a merge method (see 'mistral-merge methods')");
                        }
                        break;
                    case "base_model": r.BaseModel = ModelRefOf(v, "base_model"); break;
                    case "models": models = v; modelsKey = Mark.From(k.Start); break;
                    case "slices": slices = v; slicesKey = Mark.From(k.Start); break;
                    case "parameters": r.Parameters = Params(v, "parameters"); break;
                    case "dtype": r.DType = DTypeOf(v, "dtype"); break;
                    case "out_dtype": r.OutDType = DTypeOf(v, "out_dtype"); break;
                    case "tokenizer_source":
                    case "tokenizer":
                        if (r.Tokenizer != null) { p.Add(Mark.From(k.Start), "give either 'tokenizer_source' or 'tokenizer', not both"); break; }
                        r.Tokenizer = key == "tokenizer" ? TokenizerBlock(v) : TokenizerOf(v, "tokenizer_source", Mark.From(v.Start));
                        break;
                    case "chat_template":
                        r.ChatTemplate = String(v, "chat_template");
                        if (r.ChatTemplate != null && ChatTemplates.Problem(r.ChatTemplate) is { } bad) p.Add(Mark.From(v.Start), bad);
                        break;
                    case "name": r.Name = String(v, "name"); break;
                }
            }
            if (r.Method.Length == 0 && !root.Children.Keys.Any(k => k is YamlScalarNode { Value: "merge_method" }))
                p.Add(Mark.From(root.Start), "missing required key 'merge_method'");
            if (models != null && slices != null)
                p.Add(slicesKey.Line > modelsKey.Line ? slicesKey : modelsKey, "give either 'models' or 'slices', not both");
            else if (models == null && slices == null) r.SourcesMissing = true;
            else if (models != null)
            {
                r.FromModels = true;
                var slice = new SliceSpec { Mark = Mark.From(models.Start) };
                ReadModels(models, slice);
                if (r.BaseModel != null && !slice.Sources.Any(s => s.Model.Text == r.BaseModel.Text))
                    slice.Sources.Add(new SourceSpec { Model = r.BaseModel, Mark = r.BaseModel.Mark });
                r.Slices.Add(slice);
            }
            else ReadSlices(slices!, r);
        }

        private void ReadModels(YamlNode node, SliceSpec slice)
        {
            if (node is not YamlSequenceNode seq) { WrongType(node, "models", "a list of {model, parameters} entries"); return; }
            if (seq.Children.Count == 0) p.Add(Mark.From(node.Start), "'models' is empty");
            foreach (var item in seq.Children)
            {
                if (item is not YamlMappingNode m) { WrongType(item, "an entry of 'models'", "a mapping with 'model' (and optional 'parameters')"); continue; }
                ModelRef? model = null;
                var ps = ParamSet.Empty;
                foreach (var (k, v) in Entries(m, ModelEntryKeys, "key of a models entry", unsupported: ["layer_range"]))
                {
                    if (((YamlScalarNode)k).Value == "model") model = ModelRefOf(v, "model");
                    else ps = Params(v, "parameters");
                }
                if (model == null) { if (!HasKey(m, "model")) p.Add(Mark.From(m.Start), "missing required key 'model'"); continue; }
                if (slice.Sources.Any(s => s.Model.Text == model.Text)) { p.Add(model.Mark, $"model '{model.Text}' is listed twice"); continue; }
                slice.Sources.Add(new SourceSpec { Model = model, Parameters = ps, Mark = Mark.From(m.Start) });
            }
        }

        private void ReadSlices(YamlNode node, Recipe r)
        {
            if (node is not YamlSequenceNode seq) { WrongType(node, "slices", "a list of {sources, parameters} entries"); return; }
            if (seq.Children.Count == 0) p.Add(Mark.From(node.Start), "'slices' is empty");
            foreach (var item in seq.Children)
            {
                if (item is not YamlMappingNode m) { WrongType(item, "an entry of 'slices'", "a mapping with 'sources'"); continue; }
                ParamSet ps = ParamSet.Empty;
                ModelRef? baseModel = null;
                YamlNode? sources = null;
                foreach (var (k, v) in Entries(m, SliceKeys, "key of a slice", unsupported: ["residual_weight"]))
                {
                    switch (((YamlScalarNode)k).Value)
                    {
                        case "sources": sources = v; break;
                        case "parameters": ps = Params(v, "parameters"); break;
                        case "base_model": baseModel = ModelRefOf(v, "base_model"); break;
                    }
                }
                var slice = new SliceSpec { Parameters = ps, BaseModel = baseModel, Mark = Mark.From(m.Start) };
                if (sources == null) { if (!HasKey(m, "sources")) p.Add(Mark.From(m.Start), "missing required key 'sources' in slice"); }
                else if (sources is not YamlSequenceNode ss) WrongType(sources, "sources", "a list of {model, layer_range} entries");
                else
                {
                    if (ss.Children.Count == 0) p.Add(Mark.From(ss.Start), "'sources' is empty");
                    foreach (var s in ss.Children) if (ReadSource(s) is { } src) slice.Sources.Add(src);
                }
                r.Slices.Add(slice);
            }
        }

        private SourceSpec? ReadSource(YamlNode node)
        {
            if (node is not YamlMappingNode m) { WrongType(node, "a source", "a mapping with 'model' and 'layer_range'"); return null; }
            ModelRef? model = null;
            (int, int)? range = null;
            Mark rangeMark = default;
            var ps = ParamSet.Empty;
            bool badRange = false;
            foreach (var (k, v) in Entries(m, SourceKeys, "key of a source"))
            {
                switch (((YamlScalarNode)k).Value)
                {
                    case "model": model = ModelRefOf(v, "model"); break;
                    case "parameters": ps = Params(v, "parameters"); break;
                    case "layer_range":
                        rangeMark = Mark.From(v.Start);
                        range = LayerRange(v);
                        badRange = range == null;
                        break;
                }
            }
            if (model == null) { if (!HasKey(m, "model")) p.Add(Mark.From(m.Start), "missing required key 'model' in source"); return null; }
            if (range == null && !badRange) { p.Add(Mark.From(m.Start), "missing required key 'layer_range' in source (e.g. layer_range: [0, 32])"); return null; }
            if (range == null) return null;
            return new SourceSpec { Model = model, LayerRange = range, LayerRangeMark = rangeMark, Parameters = ps, Mark = Mark.From(m.Start) };
        }

        private (int, int)? LayerRange(YamlNode v)
        {
            const string what = "layer_range must be a list of two integers [start, end) with 0 <= start < end";
            if (v is not YamlSequenceNode s || s.Children.Count != 2) { p.Add(Mark.From(v.Start), what); return null; }
            var a = Scalar(s.Children[0]);
            var b = Scalar(s.Children[1]);
            if (a is not double da || b is not double db || da != Math.Floor(da) || db != Math.Floor(db) || Math.Abs(da) > 1e6 || Math.Abs(db) > 1e6)
            { p.Add(Mark.From(v.Start), what); return null; }
            if (da < 0 || db <= da) { p.Add(Mark.From(v.Start), $"{what}; got [{da}, {db}]"); return null; }
            return ((int)da, (int)db);
        }

        private TokenizerSpec? TokenizerOf(YamlNode v, string key, Mark mark)
        {
            var s = String(v, key);
            if (s == null) return null;
            if (s == "base") return new TokenizerSpec { Mode = TokenizerMode.Base, Mark = mark };
            if (s == "union") return new TokenizerSpec { Mode = TokenizerMode.Union, Mark = mark };
            return ModelRefOf(v, key) is { } m ? new TokenizerSpec { Mode = TokenizerMode.Model, Model = m, Mark = mark } : null;
        }

        /// <summary><c>tokenizer: {source (default union), tokens, pad_to_multiple_of}</c>.</summary>
        private TokenizerSpec? TokenizerBlock(YamlNode v)
        {
            if (v is not YamlMappingNode tm) { WrongType(v, "tokenizer", "a mapping with 'source', 'tokens', 'pad_to_multiple_of'"); return null; }
            TokenizerSpec? spec = new() { Mode = TokenizerMode.Union, Mark = Mark.From(v.Start) };
            YamlNode? tokens = null, pad = null;
            foreach (var (tk, tv) in Entries(tm, TokenizerKeys, "key of tokenizer"))
            {
                switch (((YamlScalarNode)tk).Value)
                {
                    case "source": spec = TokenizerOf(tv, "tokenizer.source", Mark.From(tv.Start)); break;
                    case "tokens": tokens = tv; break;
                    case "pad_to_multiple_of": pad = tv; break;
                }
            }
            if (spec == null) return null;
            if (pad != null && Scalar(pad) is not null)
            {
                if (Scalar(pad) is double d && d == Math.Floor(d) && d >= 1 && d <= 1 << 20) spec.PadToMultipleOf = (int)d;
                else p.Add(Mark.From(pad.Start), $"tokenizer.pad_to_multiple_of must be a positive integer, got {(pad as YamlScalarNode)?.Value ?? "a collection"}");
            }
            if (tokens != null && Scalar(tokens) is not null || tokens is YamlMappingNode or YamlSequenceNode)
            {
                if (tokens is not YamlMappingNode map) WrongType(tokens!, "tokenizer.tokens", "a mapping of tokens to {source, force}");
                else
                    foreach (var (k, tv) in map.Children)
                        if (TokenOf(k, tv) is { } t) spec.Tokens.Add(t);
            }
            return spec;
        }

        private TokenSpec? TokenOf(YamlNode k, YamlNode v)
        {
            if (k is not YamlScalarNode { Value: { } token }) { p.Add(Mark.From(k.Start), "a key of tokenizer.tokens must be the token's text"); return null; }
            var what = $"tokenizer.tokens '{token}'";
            if (v is not YamlMappingNode m) { WrongType(v, what, "a mapping with 'source' (and optional 'force')"); return null; }
            bool force = false;
            YamlNode? source = null;
            foreach (var (ek, ev) in Entries(m, TokenKeys, $"key of {what}"))
            {
                if (((YamlScalarNode)ek).Value == "source") source = ev;
                else if (Scalar(ev) is bool b) force = b;
                else WrongType(ev, $"{what}: force", "true or false");
            }
            if (source == null || Scalar(source) is null && source is YamlScalarNode)
            {
                p.Add(Mark.From((source ?? k).Start), $"{what} has no source (a model, {{kind: model_token, ...}} or {{kind: zero}})");
                return null;
            }
            if (source is YamlScalarNode)
                return ModelRefOf(source, $"{what}: source") is { } model
                    ? new TokenSpec { Token = token, Mark = Mark.From(k.Start), Kind = TokenSourceKind.Model, Model = model, Force = force } : null;
            if (source is not YamlMappingNode sm) { WrongType(source, $"{what}: source", "a model or a mapping with 'kind'"); return null; }
            return TokenSource(sm, token, what, Mark.From(k.Start), force);
        }

        private TokenSpec? TokenSource(YamlMappingNode sm, string token, string what, Mark mark, bool force)
        {
            string? kind = null;
            ModelRef? model = null;
            int? id = null;
            string? text = null;
            bool bad = false;
            foreach (var (sk, sv) in Entries(sm, TokenSourceKeys, $"key of {what}: source"))
            {
                switch (((YamlScalarNode)sk).Value)
                {
                    case "kind": kind = String(sv, $"{what}: kind"); bad |= kind == null; break;
                    case "model": model = ModelRefOf(sv, $"{what}: model"); bad |= model == null; break;
                    case "token": text = String(sv, $"{what}: token"); bad |= text == null; break;
                    case "token_id":
                        if (Scalar(sv) is double d && d == Math.Floor(d) && d >= 0 && d < int.MaxValue) id = (int)d;
                        else { p.Add(Mark.From(sv.Start), $"{what}: token_id must be a non-negative integer"); bad = true; }
                        break;
                }
            }
            if (bad) return null;
            var at = Mark.From(sm.Start);
            switch (kind)
            {
                case "zero":
                    if (model != null || id != null || text != null) { p.Add(at, $"{what}: a zero source takes no model, token_id or token"); return null; }
                    return new TokenSpec { Token = token, Mark = mark, Kind = TokenSourceKind.Zero, Force = force };
                case "model_token":
                    if (model == null) { p.Add(at, $"{what}: a model_token source needs 'model'"); return null; }
                    if ((id == null) == (text == null)) { p.Add(at, $"{what}: a model_token source needs exactly one of 'token_id' and 'token'"); return null; }
                    return new TokenSpec { Token = token, Mark = mark, Kind = TokenSourceKind.ModelToken, Model = model, TokenId = id, SourceToken = text, Force = force };
                case null: p.Add(at, $"{what}: source needs 'kind' (model_token or zero)"); return null;
                default: p.Add(at, $"{what}: unknown source kind '{kind}' (expected model_token or zero)"); return null;
            }
        }

        private DType? DTypeOf(YamlNode v, string key)
        {
            var s = String(v, key);
            if (s == null) return null;
            if (DTypes.TryParseUser(s, out var t)) return t;
            p.Add(Mark.From(v.Start), $"{key}: unknown dtype '{s}' (expected bfloat16, float16 or float32)");
            return null;
        }

        private ModelRef? ModelRefOf(YamlNode v, string key)
        {
            var s = String(v, key);
            if (s == null) return null;
            if (s.Trim().Length == 0) { p.Add(Mark.From(v.Start), $"'{key}' is empty"); return null; }
            if (s.Count(c => c == '+') > 1 || s.Trim().StartsWith('+') || s.Trim().EndsWith('+'))
            {
                p.Add(Mark.From(v.Start), $"'{s}': a LoRA reference is MODEL+ADAPTER (one '+', both given)");
                return null;
            }
            return new ModelRef(s.Trim(), Mark.From(v.Start));
        }

        private ParamSet Params(YamlNode node, string key)
        {
            var ps = new ParamSet();
            if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" }) return ps;
            if (node is not YamlMappingNode m) { WrongType(node, key, "a mapping of parameter names to values"); return ps; }
            foreach (var (k, v) in m.Children)
            {
                if (k is not YamlScalarNode { Value: { } name }) { p.Add(Mark.From(k.Start), "parameter names must be plain strings"); continue; }
                if (ParamValueOf(v, name) is { } val) ps.Items[name] = (val, Mark.From(k.Start));
                else ps.Invalid.Add(name);
            }
            return ps;
        }

        /// <summary>Scalar, gradient, list of non-numeric scalars, or list of {filter, value}.</summary>
        private ParamValue? ParamValueOf(YamlNode v, string name)
        {
            var mark = Mark.From(v.Start);
            switch (v)
            {
                case YamlScalarNode:
                    {
                        var s = Scalar(v);
                        if (s == null) { p.Add(mark, $"parameter '{name}' has no value"); return null; }
                        return new ScalarValue(s, mark);
                    }
                case YamlMappingNode m:
                    if (HasKey(m, "filter") || HasKey(m, "value"))
                        p.Add(mark, $"parameter '{name}': a {{filter, value}} condition must be an entry of a list (write '- filter: ...')");
                    else WrongType(v, $"parameter '{name}'", "a number, a list of numbers, or a list of {filter, value} conditions");
                    return null;
                case YamlSequenceNode seq:
                    if (seq.Children.Count == 0) { p.Add(mark, $"parameter '{name}' is an empty list"); return null; }
                    if (seq.Children.All(c => c is YamlMappingNode))
                    {
                        var entries = new List<(string?, ParamValue)>();
                        foreach (YamlMappingNode c in seq.Children)
                        {
                            string? filter = null; ParamValue? value = null; bool hasValue = false;
                            foreach (var (ck, cv) in Entries(c, ConditionKeys, $"key of a '{name}' condition"))
                            {
                                if (((YamlScalarNode)ck).Value == "filter")
                                {
                                    if (cv is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" }) continue;
                                    filter = String(cv, "filter");
                                }
                                else { hasValue = true; value = ParamValueOf(cv, name); }
                            }
                            if (!hasValue && !HasKey(c, "value")) { p.Add(Mark.From(c.Start), $"parameter '{name}': condition without 'value'"); continue; }
                            if (value != null) entries.Add((filter, value));
                        }
                        return entries.Count == 0 ? null : new ConditionalValue(entries, mark);
                    }
                    if (seq.Children.All(c => c is YamlScalarNode))
                    {
                        var items = seq.Children.Select(Scalar).ToArray();
                        if (items.Any(x => x == null)) { p.Add(mark, $"parameter '{name}': list holds an empty value"); return null; }
                        if (items.All(x => x is double)) return new GradientValue(items.Select(x => (double)x!).ToArray(), mark, seq.Children.Select(c => Mark.From(c.Start)).ToArray());
                        return new IndexedValue(items!, mark);
                    }
                    p.Add(mark, $"parameter '{name}': a list must hold only numbers (a gradient) or only {{filter, value}} conditions");
                    return null;
                default:
                    WrongType(v, $"parameter '{name}'", "a value");
                    return null;
            }
        }

        /// <summary>YAML 1.1 scalar typing as PyYAML does it: null, bool, number, else string.</summary>
        public static object? Scalar(YamlNode n)
        {
            if (n is not YamlScalarNode s) return null;
            var v = s.Value;
            if (s.Style != ScalarStyle.Plain) return v ?? "";
            if (v is null or "" or "~" or "null" or "Null" or "NULL") return null;
            switch (v)
            {
                case "true" or "True" or "TRUE" or "yes" or "Yes" or "YES" or "on" or "On" or "ON": return true;
                case "false" or "False" or "FALSE" or "no" or "No" or "NO" or "off" or "Off" or "OFF": return false;
            }
            if (v.Length > 0 && (char.IsDigit(v[0]) || v[0] is '-' or '+' or '.') &&
                double.TryParse(v.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d))
                return d;
            return v;
        }

        private string? String(YamlNode v, string key)
        {
            if (v is YamlScalarNode s && Scalar(v) is string str) return str;
            if (v is YamlScalarNode sc && sc.Style == ScalarStyle.Plain && Scalar(v) is double) return sc.Value; // e.g. a model named 1.0
            WrongType(v, key, "a string");
            return null;
        }

        private void WrongType(YamlNode v, string what, string expected)
        {
            string got = v switch
            {
                YamlMappingNode => "a mapping",
                YamlSequenceNode => "a list",
                YamlScalarNode s when Scalar(s) == null => "an empty value",
                YamlScalarNode s when Scalar(s) is bool => $"a boolean ({s.Value})",
                YamlScalarNode s when Scalar(s) is double => $"a number ({s.Value})",
                YamlScalarNode s => $"a string ('{s.Value}')",
                _ => "something else",
            };
            p.Add(Mark.From(v.Start), $"{what} must be {expected}, got {got}");
        }

        private static bool HasKey(YamlMappingNode m, string key) => m.Children.Keys.Any(k => k is YamlScalarNode { Value: var v } && v == key);

        /// <summary>The known entries of a mapping; unknown keys are reported with a suggestion.</summary>
        private IEnumerable<(YamlNode Key, YamlNode Value)> Entries(YamlMappingNode m, string[] known, string what, string[]? unsupported = null)
        {
            foreach (var (k, v) in m.Children)
            {
                if (k is not YamlScalarNode { Value: { } key }) { p.Add(Mark.From(k.Start), $"{what} must be a plain string"); continue; }
                if (Array.IndexOf(known, key) >= 0) { yield return (k, v); continue; }
                if (unsupported != null && Array.IndexOf(unsupported, key) >= 0) { p.Add(Mark.From(k.Start), $"'{key}' is not supported here"); continue; }
                if (key == "modules") { p.Add(Mark.From(k.Start), "'modules' (per-module merges) is not supported; use 'slices' or 'models'"); continue; }
                p.Add(Mark.From(k.Start), $"unknown {what} '{key}'{Suggest.Hint(key, known)}");
            }
        }
    }
}
