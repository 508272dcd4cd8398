using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.Jinja;

namespace Mistral.Merge.Tests.Inference;

/// <summary>generate's chat template: the model's own (tokenizer_config.json, a list's "default", chat_template.jinja),
/// a built-in, a .jinja file or none, rendered with the conversation and the tokenizer's bos/eos strings.</summary>
public sealed class ChatTemplateTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private static readonly JsonArray Chat = ChatTemplate.Conversation("Hi", "Be brief.");

    [Fact]
    public void AutoUsesTheTemplateOfTokenizerConfigWithItsBosAndEosTokens()
    {
        File.WriteAllText(_d["tokenizer_config.json"], """
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m['content'] }}{{ eos_token }}{% endfor %}"}
            """);
        var t = ChatTemplate.Resolve("auto", _d.Path);
        Assert.Equal(("auto", _d["tokenizer_config.json"]), (t.Name, t.Source));
        Assert.Equal("<s>[system] Be brief.</s>[user] Hi</s>", t.Render(Chat, TokenizerConfig.Load(_d.Path)));
    }

    [Fact]
    public void AutoTakesTheDefaultOfANamedListAndPrefersChatTemplateJinja()
    {
        File.WriteAllText(_d["tokenizer_config.json"], """
            {"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ messages | length }} {{ add_generation_prompt }}"}]}
            """);
        Assert.Equal("2 true", ChatTemplate.Resolve("auto", _d.Path).Render(Chat, null));
        File.WriteAllText(_d["chat_template.jinja"], "{{ messages[-1].content }}!\n");
        var t = ChatTemplate.Resolve("auto", _d.Path);
        Assert.Equal(_d["chat_template.jinja"], t.Source);
        Assert.Equal("Hi!", t.Render(Chat, null));
    }

    [Fact]
    public void AutoWithoutATemplateIsThePlainText()
    {
        var t = ChatTemplate.Resolve("auto", _d.Path);
        Assert.Null(t.Template);
        Assert.Equal("Be brief.\n\nHi", t.Render(Chat, null));
        Assert.Equal("Hi", ChatTemplate.Resolve("none", _d.Path).Render(ChatTemplate.Conversation("Hi", null), null));
    }

    [Fact]
    public void BuiltinNamesRenderTheRecipeTemplates()
    {
        File.WriteAllText(_d["tokenizer_config.json"], """{"bos_token": "<s>", "eos_token": "</s>"}""");
        var tokens = TokenizerConfig.Load(_d.Path);
        Assert.Equal("<s>[INST] Be brief.\n\nHi [/INST]", ChatTemplate.Resolve("mistral", _d.Path).Render(Chat, tokens));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.Resolve("chatml", _d.Path).Render(Chat, tokens));
    }

    [Fact]
    public void AJinjaFileIsAcceptedAndAnUnknownNameIsRefused()
    {
        File.WriteAllText(_d["my.jinja"], "{% for m in messages %}{{ m.role | upper }};{% endfor %}");
        Assert.Equal("SYSTEM;USER;", ChatTemplate.Resolve(_d["my.jinja"], _d.Path).Render(Chat, null));
        Assert.Contains("missing.jinja", Assert.Throws<MergeException>(() => ChatTemplate.Resolve(_d["missing.jinja"], _d.Path)).Message);
        var e = Assert.Throws<MergeException>(() => ChatTemplate.Resolve("vicuna", _d.Path));
        Assert.Equal("--chat-template must be auto, none, alpaca, chatml, exaone, llama3, mistral or a .jinja file, got 'vicuna'", e.Message);
    }

    [Fact]
    public void ATemplateThatDoesNotParseNamesItsFileAndPosition()
    {
        File.WriteAllText(_d["tokenizer_config.json"], """{"chat_template": "{% for m in messages %}\n{{ m.content ]] }}{% endfor %}"}""");
        var e = Assert.Throws<JinjaException>(() => ChatTemplate.Resolve("auto", _d.Path));
        Assert.Equal($"chat template {_d["tokenizer_config.json"]}, line 2:14: Parser Error: Expected closing expression token. CloseSquareBracket !== CloseExpression.", e.Message);
    }

    [Fact]
    public void SystemReplacesALeadingSystemMessageOrIsInserted()
    {
        var withSystem = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "old" }, new JsonObject { ["role"] = "user", ["content"] = "u" });
        Assert.Equal("""[{"role":"system","content":"new"},{"role":"user","content":"u"}]""", ChatTemplate.WithSystem(withSystem, "new").ToJsonString());
        var without = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "u" });
        Assert.Equal("""[{"role":"system","content":"s"},{"role":"user","content":"u"}]""", ChatTemplate.WithSystem(without, "s").ToJsonString());
    }

    [Fact]
    public void AMessagesFileMustBeAListOfObjectsWithARole()
    {
        File.WriteAllText(_d["ok.json"], """[{"role": "user", "content": "Hi"}]""");
        Assert.Single(ChatTemplate.ReadMessages(_d["ok.json"]));
        foreach (var (text, error) in new[]
        {
            ("""{"role": "user"}""", "expected a non-empty JSON list of {\"role\": ..., \"content\": ...} messages"),
            ("[]", "expected a non-empty JSON list of {\"role\": ..., \"content\": ...} messages"),
            ("""[{"role": "user", "content": "a"}, {"content": "b"}]""", "message 1 is not an object with a string \"role\""),
            ("""[{"role": "user", "content": {"x": 1}}]""", "message 0 has a \"content\" that is neither text nor a list"),
        })
        {
            File.WriteAllText(_d["bad.json"], text);
            var e = Assert.Throws<MergeException>(() => ChatTemplate.ReadMessages(_d["bad.json"]));
            Assert.Equal($"{_d["bad.json"]}: {error}", e.Message);
        }
        File.WriteAllText(_d["bad.json"], "[{");
        Assert.StartsWith($"{_d["bad.json"]}: invalid JSON", Assert.Throws<MergeException>(() => ChatTemplate.ReadMessages(_d["bad.json"])).Message);
    }
}
