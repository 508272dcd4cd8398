using System.Text.Json.Nodes;

namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// generate with the model's own chat template, --messages, and generation_config.json, on a copy of the stories260k
/// fixture. Expected ids are the fixture's greedy continuation of "Once upon a time" (fixtures/expected.json, an
/// independent PyTorch forward pass): [432, 383, 286, 261, 376, ...] after prompt ids [1, 403, 407, 261, 378].
/// </summary>
public sealed class GenerateChatTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const string Greedy = "[432,383,286,261,376,298,315,421]";

    private string Model(string? generationConfig = null, string? chatTemplate = null)
    {
        string dir = _d["m"];
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(SharedFixtures.PathOf("stories260k"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), true);
        if (generationConfig != null) File.WriteAllText(Path.Combine(dir, "generation_config.json"), generationConfig);
        if (chatTemplate != null)
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")))!.AsObject();
            config["chat_template"] = chatTemplate;
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        }
        return dir;
    }

    private static JsonNode Json(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonNode.Parse(r.Stdout)!;
    }

    [FixtureFact]
    public void EveryEosTokenIdOfGenerationConfigStopsGeneration()
    {
        // 261 is the 4th greedy token: with it among the EOS ids, generation stops before it.
        var j = Json(CliRunner.Run("generate", Model("""{"eos_token_id": [2, 261], "do_sample": false}"""), "--prompt", "Once upon a time", "--max-new-tokens", "8", "--json"));
        Assert.Equal("[432,383,286]", j["ids"]!.ToJsonString());
        Assert.True((bool)j["stopped_at_eos"]!);
        Assert.Equal("[2,261]", j["stop_ids"]!.ToJsonString());
        Assert.Equal("""{"value":0,"source":"generation_config.json (do_sample false)"}""", j["sampling"]!["temperature"]!.ToJsonString());
        var single = Json(CliRunner.Run("generate", Model("""{"eos_token_id": 383}"""), "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8", "--json"));
        Assert.Equal("[432]", single["ids"]!.ToJsonString());
        Assert.Equal("[2,383]", single["stop_ids"]!.ToJsonString());
    }

    [FixtureFact]
    public void GenerationConfigSamplingDefaultsApplyUnlessTheCommandLineOverridesThem()
    {
        string model = Model("""{"do_sample": true, "temperature": 0.9, "top_k": 40, "top_p": 0.95, "repetition_penalty": 1.1}""");
        var fromFile = Json(CliRunner.Run("generate", model, "--prompt", "Once upon a time", "--seed", "7", "--max-new-tokens", "12", "--json"));
        var explicitFlags = Json(CliRunner.Run("generate", SharedFixtures.PathOf("stories260k"), "--prompt", "Once upon a time", "--temperature", "0.9",
            "--top-k", "40", "--top-p", "0.95", "--repetition-penalty", "1.1", "--seed", "7", "--max-new-tokens", "12", "--json"));
        Assert.Equal(explicitFlags["ids"]!.ToJsonString(), fromFile["ids"]!.ToJsonString());
        Assert.Equal("""{"temperature":{"value":0.9,"source":"generation_config.json"},"top_k":{"value":40,"source":"generation_config.json"},"top_p":{"value":0.95,"source":"generation_config.json"},"repetition_penalty":{"value":1.1,"source":"generation_config.json"}}""",
            fromFile["sampling"]!.ToJsonString());
        Assert.Equal("""{"value":0.9,"source":"command line"}""", explicitFlags["sampling"]!["temperature"]!.ToJsonString());
        var greedy = Json(CliRunner.Run("generate", model, "--prompt", "Once upon a time", "--temperature", "0", "--repetition-penalty", "1", "--max-new-tokens", "8", "--json"));
        Assert.Equal(Greedy, greedy["ids"]!.ToJsonString());
        Assert.Equal("command line", (string)greedy["sampling"]!["temperature"]!["source"]!);
    }

    [FixtureFact]
    public void TheModelsOwnTemplateIsRenderedAndItsBosIsNotDoubled()
    {
        string model = Model(chatTemplate: "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
        var j = Json(CliRunner.Run("generate", model, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8", "--json"));
        Assert.Equal("<s>Once upon a time", (string)j["prompt"]!);
        Assert.Equal("[1,403,407,261,378]", j["prompt_ids"]!.ToJsonString());
        Assert.Equal(Greedy, j["ids"]!.ToJsonString());
        Assert.Equal("auto", (string)j["chat_template"]!);
        Assert.Equal(Path.Combine(model, "tokenizer_config.json"), (string)j["chat_template_source"]!);
    }

    [FixtureFact]
    public void MessagesAndSystemFormAMultiTurnPrompt()
    {
        string model = Model(chatTemplate: "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        File.WriteAllText(_d["chat.json"], """[{"role": "system", "content": "old"}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]""");
        var j = Json(CliRunner.Run("generate", model, "--messages", _d["chat.json"], "--system", "Be kind", "--temperature", "0", "--max-new-tokens", "1", "--json"));
        Assert.Equal("<system>Be kind<user>Hi<assistant>Hello<user>Bye<assistant>", (string)j["prompt"]!);
        Assert.Equal(1, (int)j["prompt_ids"]![0]!);   // the template wrote no BOS: the tokenizer's is added
        var builtin = Json(CliRunner.Run("generate", model, "--messages", _d["chat.json"], "--chat-template", "mistral", "--temperature", "0", "--max-new-tokens", "1", "--json"));
        Assert.Equal("<s>[INST] old\n\nHi [/INST]Hello</s>[INST] Bye [/INST]", (string)builtin["prompt"]!);
        Assert.Equal("built-in 'mistral'", (string)builtin["chat_template_source"]!);
    }

    [FixtureFact]
    public void ATemplateThatRaisesIsAOneLineErrorNamingTheTemplateAndPosition()
    {
        string model = Model(chatTemplate: "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}x");
        var r = CliRunner.Run("generate", model, "--prompt", "Hi", "--system", "S");
        CliRunner.AssertOneLineError(r, $"chat template {Path.Combine(model, "tokenizer_config.json")}, line 1:44: System role not supported");
        Assert.Equal(0, CliRunner.Run("generate", model, "--prompt", "Hi", "--max-new-tokens", "1").ExitCode);
    }

    [FixtureFact]
    public void ABadGenerationConfigOrMessagesFileIsAOneLineError()
    {
        var r = CliRunner.Run("generate", Model("""{"eos_token_id": [2, "x"]}"""), "--prompt", "Hi");
        CliRunner.AssertOneLineError(r, "generation_config.json: each 'eos_token_id' must be an integer from 0 to 16777215, got \"x\"");
        r = CliRunner.Run("generate", Model("""{"temperature": -1}"""), "--prompt", "Hi");
        CliRunner.AssertOneLineError(r, "generation_config.json: 'temperature' must be a number from 0 to 1000000, got -1");
        File.WriteAllText(_d["chat.json"], "[{\"content\": \"x\"}]");
        r = CliRunner.Run("generate", Model(), "--messages", _d["chat.json"]);
        CliRunner.AssertOneLineError(r, "chat.json: message 0 is not an object with a string \"role\"");
    }
}
