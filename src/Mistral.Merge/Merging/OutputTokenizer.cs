using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Merging;

/// <summary>
/// The tokenizer a recipe builds (<c>tokenizer_source</c> / <c>tokenizer:</c>): the output vocabulary (base, union or a
/// model's, plus the <c>tokens</c> keys), its added tokens, the padded row count, and for every model the map from
/// output ids to its own ids. See the spec's "Tokenizer merging".
/// </summary>
public sealed class OutputTokenizer
{
    public required TokenizerSpec Spec { get; init; }
    /// <summary>Tokens by output id (0 … |vocab|−1).</summary>
    public required string[] Tokens { get; init; }
    public required Dictionary<string, int> Ids { get; init; }
    /// <summary>Every output added token by id.</summary>
    public required SortedDictionary<int, AddedToken> Added { get; init; }
    /// <summary>The embedding rows: |vocab| rounded up to a multiple of pad_to_multiple_of.</summary>
    public required int Rows { get; init; }
    /// <summary>The model whose tokenizer files the output's are made from (the base for base/union, else the source).</summary>
    public required InputModel Donor { get; init; }
    public required Vocabulary DonorVocabulary { get; init; }
    /// <summary>Tokens of the donor left out of the output (ids at or above the base's rows, base/union only).</summary>
    public required HashSet<string> Stripped { get; init; }
    /// <summary>Per model: its vocabulary (the base's for a model without a tokenizer) and its rows.</summary>
    public required Dictionary<InputModel, (Vocabulary Vocab, int Rows)> Models { get; init; }

    public int VocabCount => Tokens.Length;

    /// <summary>The model's id of output token <paramref name="t"/> (below its rows), or −1.</summary>
    public int ModelId(InputModel m, int t) =>
        Models.TryGetValue(m, out var mv) && mv.Vocab.Ids.TryGetValue(Tokens[t], out var id) && id < mv.Rows ? id : -1;

    /// <summary>The model's id of <paramref name="token"/> in its own tokenizer (below its rows), or −1.</summary>
    public int OwnId(InputModel m, string token) =>
        Models.TryGetValue(m, out var mv) && mv.Vocab.Ids.TryGetValue(token, out var id) && id < mv.Rows ? id : -1;

    /// <summary>
    /// Builds the output tokenizer for <paramref name="models"/> (the merge's inputs, recipe order); <paramref name="baseModel"/>
    /// is base_model, else the first model; <paramref name="source"/> the MODEL of <c>tokenizer_source: MODEL</c>.
    /// Problems go to <paramref name="p"/> at the recipe's marks; returns null when there are any.
    /// </summary>
    public static OutputTokenizer? Build(TokenizerSpec spec, IReadOnlyList<InputModel> models, InputModel baseModel, InputModel? source, RecipeProblems p)
    {
        var vocabs = new Dictionary<InputModel, (Vocabulary Vocab, int Rows)>();
        var baseVocab = Vocabulary.Read(baseModel.Folder.Path);
        if (baseVocab == null && spec.Mode != TokenizerMode.Model)
        {
            p.Add(spec.Mark, $"model '{baseModel.Text}' (the tokenizer's base) has no tokenizer.json or tokenizer.model to build the {spec.Mode.ToString().ToLowerInvariant()} vocabulary from");
            return null;
        }
        foreach (var m in models.Prepend(baseModel).Concat(source == null ? [] : [source]).Distinct())
        {
            var v = m == baseModel ? baseVocab : Vocabulary.Read(m.Folder.Path);
            if (v == null && m == source) { p.Add(spec.Mark, $"model '{m.Text}' has no tokenizer.json or tokenizer.model to take the tokenizer from"); return null; }
            v ??= baseVocab;
            if (v == null) continue; // MODEL mode: a model without a tokenizer and a base without one have no own rows
            vocabs[m] = (v, m.Folder.Config is { VocabSize: > 0 } c ? c.VocabSize : v.Count);
        }
        var donor = spec.Mode == TokenizerMode.Model ? source! : baseModel;
        var (donorVocab, donorRows) = vocabs[donor];
        int keep = spec.Mode == TokenizerMode.Model ? int.MaxValue : donorRows;
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new SortedDictionary<int, AddedToken>();
        var stripped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (token, id) in donorVocab.ById())
        {
            if (id >= keep) { stripped.Add(token); continue; }
            ids[token] = id;
            if (donorVocab.Added.TryGetValue(id, out var a) && a.Content == token) added[id] = a;
        }
        int next = ids.Count == 0 ? 0 : ids.Values.Max() + 1;
        void Append(AddedToken a)
        {
            if (ids.ContainsKey(a.Content)) return;
            ids[a.Content] = next;
            added[next] = a with { Id = next };
            next++;
        }
        if (spec.Mode == TokenizerMode.Union) AppendUnion(models.Prepend(baseModel).Distinct().Where(vocabs.ContainsKey).Select(m => vocabs[m]).ToList(), Append);
        foreach (var t in spec.Tokens) Append(AddedToken.Plain(t.Token, 0));

        var tokens = new string[ids.Count];
        foreach (var (token, id) in ids)
        {
            if (id >= tokens.Length || tokens[id] != null)
            {
                p.Add(spec.Mark, $"the output vocabulary's ids are not 0..{tokens.Length - 1}: '{token}' has id {id} (model '{donor.Text}')");
                return null;
            }
            tokens[id] = token;
        }
        int pad = spec.PadToMultipleOf;
        return new OutputTokenizer
        {
            Spec = spec, Tokens = tokens, Ids = ids, Added = added, Rows = checked((tokens.Length + pad - 1) / pad * pad),
            Donor = donor, DonorVocabulary = donorVocab, Stripped = stripped, Models = vocabs,
        };
    }

    /// <summary>
    /// union: (1) each model's tokens below its rows that are no model's added token (below its rows), as plain added
    /// tokens; (2) those added tokens with the flags of their first occurrence. Models base first, then recipe order;
    /// within a model by ascending id; tokens already present are skipped.
    /// </summary>
    private static void AppendUnion(List<(Vocabulary Vocab, int Rows)> models, Action<AddedToken> append)
    {
        var addedAnywhere = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (v, rows) in models)
            foreach (var a in v.Added.Values)
                if (a.Id < rows && v.IsAdded(a.Content)) addedAnywhere.Add(a.Content);
        foreach (var (v, rows) in models)
            foreach (var (token, id) in v.ById())
                if (id < rows && !addedAnywhere.Contains(token)) append(AddedToken.Plain(token, 0));
        foreach (var (v, rows) in models)
            foreach (var a in v.Added.Values)
                if (a.Id < rows && v.IsAdded(a.Content)) append(a);
    }
}
