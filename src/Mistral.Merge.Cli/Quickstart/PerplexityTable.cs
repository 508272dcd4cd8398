using System.Globalization;
using Mistral.Merge.Cli.Commands;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Quickstart;

/// <summary>
/// Perplexity of each model on each text, measured in-process on the CPU backend exactly as
/// <c>perplexity MODEL --text FILE --ctx N</c> does (BOS + whole text, non-overlapping windows), as an aligned table.
/// </summary>
internal static class PerplexityTable
{
    public static double[,] Measure(IReadOnlyList<string> models, IReadOnlyList<string> texts, int ctx, Progress progress, CancellationToken cancel)
    {
        var ppl = new double[models.Count, texts.Count];
        var contents = texts.Select(TextTokens.ReadText).ToArray();
        for (int i = 0; i < models.Count; i++)
        {
            using var m = TransformerModel.Load(models[i]);
            var tok = TokenizerLoader.Load(m.Path);
            using var backend = EvalCommon.Backend(m, "cpu", threads: 0, offload: false);
            for (int j = 0; j < texts.Count; j++)
            {
                var ids = TextTokens.Encode(tok, contents[j], 0, texts[j]);
                ppl[i, j] = Perplexity.Evaluate(backend, ids, ctx, ctx, cancel: cancel).Perplexity;
                progress.Report(i * texts.Count + j + 1, models.Count * texts.Count);
            }
        }
        return ppl;
    }

    /// <summary>One header row, then one row per model; numbers right-aligned with 4 decimals.</summary>
    public static void Print(TextWriter o, IReadOnlyList<string> rows, IReadOnlyList<string> columns, double[,] ppl)
    {
        var table = new TextTable(["model", .. columns]).AlignRight([.. Enumerable.Range(1, columns.Count)]);
        for (int i = 0; i < rows.Count; i++)
            table.Add([rows[i], .. Enumerable.Range(0, columns.Count).Select(j => ppl[i, j].ToString("0.0000", CultureInfo.InvariantCulture))]);
        table.Write(o);
    }
}
