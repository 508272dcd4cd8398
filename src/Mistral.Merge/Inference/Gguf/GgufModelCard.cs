using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// general.name, general.license, general.tags and general.base_model.* from a folder's model card (README.md front
/// matter and its first "# " heading: a merge's card is titled with the recipe's name), as convert_hf_to_gguf's
/// metadata does; without a card, general.name is the folder's name (convert's fallback too).
/// </summary>
public static class GgufModelCard
{
    public static List<(string Key, GgufValue Value)> Read(string folder)
    {
        var meta = new List<(string, GgufValue)>();
        var readme = Path.Combine(folder, "README.md");
        string? title = null, license = null;
        var lists = new Dictionary<string, List<string>>();
        if (InputFile.IsPresent(readme))
        {
            var lines = File.ReadAllLines(readme);
            int i = 0;
            if (lines.Length > 0 && lines[0].Trim() == "---")
            {
                string? listKey = null;
                for (i = 1; i < lines.Length && lines[i].Trim() != "---"; i++)
                {
                    var line = lines[i];
                    if (line.StartsWith("- ", StringComparison.Ordinal) && listKey != null) { lists[listKey].Add(Unquote(line[2..])); continue; }
                    int colon = line.IndexOf(':', StringComparison.Ordinal);
                    if (colon <= 0 || line.StartsWith(' ')) { listKey = null; continue; }
                    var key = line[..colon].Trim();
                    var value = line[(colon + 1)..].Trim();
                    if (value.Length == 0) { listKey = key; lists[key] = []; }
                    else
                    {
                        listKey = null;
                        if (key == "license") license = Unquote(value);
                        else if (key == "base_model") lists[key] = [Unquote(value)];
                    }
                }
                i++;
            }
            title = lines.Skip(i).FirstOrDefault(l => l.StartsWith("# ", StringComparison.Ordinal))?[2..].Trim();
        }
        meta.Add(("general.name", GgufValue.Str(string.IsNullOrEmpty(title) ? Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/')) : title)));
        if (license != null) meta.Add(("general.license", GgufValue.Str(license)));
        if (lists.TryGetValue("base_model", out var bases) && bases.Count > 0)
        {
            meta.Add(("general.base_model.count", GgufValue.U32((uint)bases.Count)));
            for (int b = 0; b < bases.Count; b++)
            {
                meta.Add(($"general.base_model.{b}.name", GgufValue.Str(bases[b])));
                meta.Add(($"general.base_model.{b}.repo_url", GgufValue.Str($"https://huggingface.co/{bases[b]}")));
            }
        }
        if (lists.TryGetValue("tags", out var tags) && tags.Count > 0) meta.Add(("general.tags", GgufValue.Strings([.. tags])));
        return meta;
    }

    private static string Unquote(string s)
    {
        s = s.Trim();
        return s.Length >= 2 && (s[0] == '"' || s[0] == '\'') && s[^1] == s[0] ? s[1..^1] : s;
    }
}
