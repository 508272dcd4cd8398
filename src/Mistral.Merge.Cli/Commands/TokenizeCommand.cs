using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>tokenize MODEL (TEXT | --text FILE) [--no-bos] [--special] [--count] [--json]</c>: token ids and pieces, exactly as sentencepiece (tokenizer.model) or HF tokenizers (tokenizer.json).
/// <c>--text</c> names a file, as in every command; a literal string is the positional TEXT.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder with tokenizer.model or tokenizer.json (special tokens from tokenizer_config.json), or a .model/.json file; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var text = new Argument<string?>("TEXT") { Description = "Text to encode (or --text FILE)", Arity = ArgumentArity.ZeroOrOne };
        var file = new Option<string?>("--text") { Description = "UTF-8 text file to encode (whole file, as one text)" };
        var noBos = new Option<bool>("--no-bos") { Description = "Do not prepend BOS (default: tokenizer_config.json add_bos_token, else BOS)" };
        var special = new Option<bool>("--special") { Description = "Treat special-token strings in the text (<s>, </s>, control tokens) as their ids, as in a chat template (tokenizer.json: always, as HF tokenizers)" };
        var count = new Option<bool>("--count") { Description = "Print only the token count and the encoding speed" };
        var json = CommonOptions.Json("tokens, ids, pieces");
        var cmd = new Command("tokenize", "Encode text with the model's tokenizer (sentencepiece tokenizer.model or HF tokenizer.json) and print ids and pieces") { model, text, file, noBos, special, count, json };
        cmd.Check(r =>
        {
            if ((r.GetValue(text) == null) == (r.GetValue(file) == null)) throw new MergeException("give exactly one of TEXT or --text FILE");
        });
        return cmd.WithAction((p, _) =>
        {
            string? t = p.GetValue(text), f = p.GetValue(file);
            var tok = TokenizerLoader.Load(ModelArguments.Resolve(p, model));
            string input = t ?? ReadUtf8(f!);
            bool addBos = !p.GetValue(noBos) && tok.AddBosByDefault;

            var sw = Stopwatch.StartNew();
            int[] ids = p.GetValue(special) ? tok.EncodeWithSpecialTokens(input, addBos) : tok.Encode(input, addBos);
            double seconds = sw.Elapsed.TotalSeconds;
            double rate = ids.Length / Math.Max(seconds, 1e-9);

            var o = p.InvocationConfiguration.Output;
            bool onlyCount = p.GetValue(count);
            if (p.GetValue(json))
            {
                var doc = new Dictionary<string, object?>
                {
                    ["version"] = CommonOptions.Version,
                    ["model"] = p.GetValue(model),
                    ["text"] = f,
                    ["tokens"] = ids.Length,
                    ["bos_added"] = addBos,
                    ["seconds"] = Math.Round(seconds, 6),
                    ["tokens_per_second"] = Math.Round(rate),
                };
                if (!onlyCount)
                {
                    doc["ids"] = ids;
                    doc["pieces"] = ids.Select(tok.IdToPiece).ToArray();
                }
                o.WriteLine(IO.JsonText.Serialize(doc, indented: false));
            }
            else if (onlyCount)
            {
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tokens: {ids.Length}  ({seconds:F3} s, {rate:N0} tokens/s)"));
            }
            else
            {
                o.WriteLine($"tokens: {ids.Length}{(addBos ? " (BOS added)" : "")}");
                o.WriteLine($"ids:    {string.Join(' ', ids)}");
                o.WriteLine($"pieces: {string.Join(' ', ids.Select(i => Visible(tok.IdToPiece(i))))}");
            }
            return Cli.Ok;
        });
    }

    // Keeps the BOM and never throws on bad bytes: sentencepiece sees the file's characters as they are.
    private static string ReadUtf8(string path)
    {
        return new UTF8Encoding(false, false).GetString(IO.InputFile.ReadAllBytes(path, IO.InputFile.Limits.Text, "a text"));
    }

    // Pieces such as "\n" or "\t" would break the one-line listing.
    private static string Visible(string piece) => piece.Replace("\n", "\\n").Replace("\t", "\\t").Replace("\r", "\\r");
}
