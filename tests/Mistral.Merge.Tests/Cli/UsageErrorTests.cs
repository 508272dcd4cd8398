namespace Mistral.Merge.Tests.Cli;

/// <summary>A malformed command line is a usage error on every command: exit 2, "error: …" and where help is, never the whole help.</summary>
public sealed class UsageErrorTests
{
    public static TheoryData<string[], string> BadValues => new()
    {
        { ["inspect", "m", "--bogus"], "Unrecognized command or argument '--bogus'" },
        { ["tokenize", "m", "--text"], "Required argument missing for option: '--text'" },
        { ["merge", "r.yml", "o", "--threads", "-1"], "--threads must be between 0 (the default) and 1024, got -1" },
        { ["merge", "r.yml", "o", "--out-shard-size", "lots"], "--out-shard-size: 'lots' is not a size" },
        { ["synth", "o", "--hidden", "2147483648"], "Cannot parse argument '2147483648' for option '--hidden'" },
        { ["synth", "o", "--arch", "gpt2"], "--arch: expected mistral, mixtral, llama or qwen2, got 'gpt2'" },
        { ["synth", "o", "--layers-override", "-1"], "--layers-override must be at least 0, got -1" },
        { ["convert", "m", "o", "--dtype", "int8"], "--dtype: unknown dtype 'int8'" },
        { ["moe-convert", "m", "o", "--strategy", "median"], "--strategy: unknown strategy 'median'" },
        { ["moe-convert", "m", "o", "--num-experts", "2", "--criterion", "best"], "--criterion: unknown criterion 'best' (expected frequency or output_change)" },
        { ["moe-convert", "m"], "OUT is required (or use --dry-run)" },
        { ["moe-convert", "m", "o", "--group"], "--group is not a parameter of moe_to_dense" },
        { ["moe-convert", "m", "o", "--calibration", "t", "--ctx", "64", "--stride", "65"], "--stride must be between 1 and --ctx (64), got 65" },
        { ["moe-stats", "m", "--text", "t", "--max-tokens", "1"], "--max-tokens must be at least 2, got 1" },
        { ["moe-stats", "m", "--text", "t", "--ctx", "256", "--stride", "257"], "--stride must be between 1 and --ctx (256), got 257" },
        { ["moe-report", "m", "--text", "t", "--threads", "-3"], "--threads must be between 0" },
        { ["moe-report", "m", "--text", "t", "--ctx", "64", "--stride", "65"], "--stride must be between 1 and --ctx (64)" },
        { ["moe-convert", "m", "o", "--num-experts", "2", "--dtype", "int4"], "--dtype" },
        { ["perplexity", "m", "--text", "t", "--device", "tpu"], "--device tpu: unknown device" },
        { ["generate", "m", "--prompt", "x", "--max-new-tokens", "-1"], "--max-new-tokens must be at least 0, got -1" },
        { ["generate", "m"], "generate needs exactly one of --prompt and --messages" },
        { ["generate", "m", "--prompt", "x", "--messages", "c.json"], "generate needs exactly one of --prompt and --messages" },
        { ["generate", "m", "--prompt", "x", "--chat-template", "vicuna"], "--chat-template must be auto, none, alpaca, chatml, exaone, llama3, mistral or a .jinja file, got 'vicuna'" },
        { ["generate", "m", "--prompt", "x", "--top-p", "0"], "--top-p must be in (0, 1], got 0" },
        { ["compare", "a", "b", "--text", "t", "--max-tokens", "-1"], "--max-tokens must be at least 0, got -1" },
        { ["quickstart", "d", "--bogus"], "Unrecognized command or argument '--bogus'" },
    };

    [Theory, MemberData(nameof(BadValues))]
    public void BadOptionValueIsAShortUsageError(string[] args, string message) =>
        CliRunner.AssertUsageError(CliRunner.Run(args), args[0], message);

    [Fact]
    public void UnknownCommandPointsAtTheTopLevelHelp()
    {
        var r = CliRunner.Run("frobnicate");
        Assert.Equal(2, r.ExitCode);
        Assert.EndsWith("see 'mistral-merge --help'", r.Stderr.TrimEnd());
    }

    [Fact]
    public void AllowedValuesShowInHelp()
    {
        Assert.Contains("--dtype <bfloat16|float16|float32>", CliRunner.Run("convert", "--help").Stdout);
        Assert.Contains("--strategy <mean|expert|frequency|aligned_mean|concat|refit>", CliRunner.Run("moe-convert", "--help").Stdout);
        Assert.Contains("--device <auto|cpu|cuda>", CliRunner.Run("perplexity", "--help").Stdout);
        Assert.Contains("--arch <mistral|mixtral|llama|qwen2>", CliRunner.Run("synth", "--help").Stdout);
    }
}
