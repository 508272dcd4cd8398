using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>
/// The shared Mistral 7B v0.1 folder has both tokenizer.model and tokenizer.json: our exact sentencepiece path and
/// the tokenizer.json path must give the same ids (texts without special-token strings, which sentencepiece's
/// EncodeAsIds keeps as text) and the same decoded text. Texts that start with a space are left out: that
/// tokenizer.json's Metaspace pre-tokenizer prepends ▁ only when the text does not already start with one, where
/// sentencepiece always adds its dummy prefix (" Hello" is ▁Hello there, ▁ ▁Hello in sentencepiece; the
/// reference tests pin the tokenizer.json behaviour).
/// </summary>
public class HfJsonSentencePieceAgreementTests
{
    [FixtureFact]
    public void SentencePieceAndTokenizerJsonGiveTheSameIdsOnMistral7b()
    {
        var folder = SharedFixtures.PathOf("mistral-7b-v0.1");
        var sp = TokenizerLoader.LoadSentencePiece(folder);
        var json = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.json"));
        var texts = HfJsonFixtures.Cases("llama2").Select(c => c.Text).Where(t => !t.Contains("<s>") && !t.Contains("</s>") && !t.Contains("<unk>")).ToList();
        foreach (var name in new[] { "tinystories-eval.txt", "wiki-eval.txt", "code-eval.txt" })
            texts.Add(File.ReadAllText(SharedFixtures.PathOf("text", name))[..20_000].TrimStart());
        texts = [.. texts.Where(t => !t.StartsWith(' '))];
        Assert.True(texts.Count >= 30, $"{texts.Count} texts");
        foreach (var text in texts)
        {
            var ids = sp.Encode(text, addBos: true);
            Assert.Equal(ids, json.Encode(text, addBos: true));
            Assert.Equal(sp.Decode(ids), json.Decode(ids));
        }
        Assert.Equal((sp.BosId, sp.EosId, sp.VocabSize, sp.AddBosByDefault), (json.BosId, json.EosId, json.VocabSize, json.AddBosByDefault));
    }
}
