using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Surgery;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Tests.Moe;

/// <summary>
/// The surgery pipeline shared by recipes and moe-convert: one vocabulary (the recipe's names, the options derived
/// from them), --ctx/--stride/--threads wherever the forward pass runs, and output checks before any computation.
/// </summary>
public sealed class SurgeryPipelineTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly string _mix, _text;

    public SurgeryPipelineTests()
    {
        _mix = SynthMixtral.Synth(_d.Path, "mix", seed: 11);
        _text = SynthMixtral.WriteText(_d.Path);
    }

    public void Dispose() => _d.Dispose();

    private static bool SameTensors(string a, string b)
    {
        using var x = ModelFolder.Open(a);
        using var y = ModelFolder.Open(b);
        return x.TensorNames.SequenceEqual(y.TensorNames) && x.TensorNames.All(n => x.GetBytes(n).SequenceEqual(y.GetBytes(n)));
    }

    [Fact]
    public void EverySurgeryParameterIsAnOptionSpelledAfterItsRecipeName()
    {
        var help = CliRunner.Run("moe-convert", "--help").Stdout;
        foreach (var p in MergeMethods.Surgeries.SelectMany(s => s.Spec.Params))
        {
            Assert.Equal("--" + p.Name.Replace('_', '-'), p.Option);
            Assert.Contains(p.Option, help);
        }
        Assert.Contains("--criterion <frequency|output_change>", help);
        Assert.Contains("--method <moe_to_dense|moe_prune>", help);
        Assert.DoesNotContain("--select", help);
    }

    [Fact]
    public void RecipeAndCommandWithTheSameNamesGiveTheSameBytes()
    {
        var cases = new (string Method, string Yaml, string[] Options)[]
        {
            ("moe_prune", "num_experts: 3\n  criterion: output_change\n  calibration: text.txt\n  calibration_tokens: 700\n  ctx: 128\n  stride: 64",
                ["--num-experts", "3", "--criterion", "output_change", "--calibration", _text, "--calibration-tokens", "700", "--ctx", "128", "--stride", "64"]),
            ("moe_prune", "num_experts: 2\n  experts_per_token: 1\n  calibration: text.txt\n  ctx: 600",
                ["--method", "moe_prune", "--num-experts", "2", "--experts-per-token", "1", "--calibration", _text, "--ctx", "600"]),
            ("moe_to_dense", "strategy: concat\n  top_k: 2\n  calibration: text.txt\n  ctx: 100\n  stride: 30",
                ["--strategy", "concat", "--top-k", "2", "--calibration", _text, "--ctx", "100", "--stride", "30"]),
        };
        int i = 0;
        foreach (var (method, yaml, options) in cases)
        {
            i++;
            File.WriteAllText(_d[$"r{i}.yml"], $"merge_method: {method}\nbase_model: mix\nparameters:\n  {yaml}\n");
            var r = CliRunner.Run("merge", _d[$"r{i}.yml"], _d[$"recipe{i}"]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            var c = CliRunner.Run(["moe-convert", _mix, _d[$"convert{i}"], .. options, "--threads", "1"]);
            Assert.True(c.ExitCode == 0, c.Stderr);
            Assert.True(SameTensors(_d[$"recipe{i}"], _d[$"convert{i}"]), $"case {i}");
            Assert.Equal(File.ReadAllText(_d[$"recipe{i}/config.json"]), File.ReadAllText(_d[$"convert{i}/config.json"]));
        }
        using (var pruned = ModelFolder.Open(_d["recipe2"])) Assert.Equal(1, pruned.Config!.NumExpertsPerTok);
    }

    [Fact]
    public void TheDefaultWindowIsTheModelsContext()
    {
        // --ctx N --stride N spelled out (N the model's context, capped), --threads 2, or nothing: the same bytes.
        string[] common = ["--num-experts", "2", "--group", "--calibration", _text];
        var n = ModelContext().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, CliRunner.Run(["moe-convert", _mix, _d["a"], .. common]).ExitCode);
        Assert.Equal(0, CliRunner.Run(["moe-convert", _mix, _d["b"], .. common, "--ctx", n, "--stride", n, "--threads", "2"]).ExitCode);
        Assert.True(SameTensors(_d["a"], _d["b"]));
        var ids = MoeForwardPass.Tokens(_mix, _text, 20000);
        var plain = MoeForwardPass.Routing(_mix, ids).SelectionFrequencyTable();
        var spelled = MoeForwardPass.Routing(_mix, ids, 256, 256, threads: 1).SelectionFrequencyTable();
        Assert.Equal(plain, spelled);
    }

    [Fact]
    public void OverlappingWindowsRouteEachTokenOnceWithTheLaterWindowsContext()
    {
        var ids = MoeForwardPass.Tokens(_mix, _text, 20000)[..300];
        using var f = ModelFolder.Open(_mix);
        var layout = new MixtralLayout(f);
        // ctx 200, stride 100: tokens 0..199 from the first window, 200..299 from the second (positions 100..299).
        using var cal = MoeForwardPass.Calibrate(_mix, ids, ctx: 200, stride: 100);
        Assert.Equal(300, cal.Tokens);
        Assert.Equal(300, cal.Routing.Tokens(0));
        using var first = MoeForwardPass.Calibrate(_mix, ids[..200], ctx: 200);
        using var second = MoeForwardPass.Calibrate(_mix, ids[100..300], ctx: 200);
        for (int l = 0; l < layout.Layers; l++)
        {
            var got = cal.MoeInputs(l, out _);
            int h = layout.Hidden;
            Assert.True(got.AsSpan(0, 200 * h).SequenceEqual(first.MoeInputs(l, out _)), $"layer {l}: first window");
            Assert.True(got.AsSpan(200 * h, 100 * h).SequenceEqual(second.MoeInputs(l, out _).AsSpan(100 * h, 100 * h)), $"layer {l}: second window");
        }
        // A window longer than the backend's chunk (512) is observed in pieces: every row still lands in its place.
        var all = MoeForwardPass.Tokens(_mix, _text, 20000)[..900];
        using var wide = MoeForwardPass.Calibrate(_mix, all, ctx: 700, stride: 700);
        var again = RouterStatisticsRunner.FromInputs(wide, layout);
        for (int l = 0; l < layout.Layers; l++)
            for (int e = 0; e < layout.Experts; e++)
                Assert.True(Math.Abs(wide.Routing.SelectionFrequency(l, e) - again.SelectionFrequency(l, e)) <= 2e-3, $"layer {l} expert {e}");
        Assert.Equal(900, wide.Routing.Tokens(0));
    }

    [Fact]
    public void MoeStatsTakesCtxStrideAndThreads()
    {
        var plain = CliRunner.Run("moe-stats", _mix, "--text", _text, "--max-tokens", "500", "--json");
        int n = ModelContext();
        var ns = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var spelled = CliRunner.Run("moe-stats", _mix, "--text", _text, "--max-tokens", "500", "--json", "--ctx", ns, "--stride", ns, "--threads", "1");
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        var a = JsonNode.Parse(plain.Stdout)!;
        var b = JsonNode.Parse(spelled.Stdout)!;
        Assert.Equal(a["selection_frequency"]!.ToJsonString(), b["selection_frequency"]!.ToJsonString());
        Assert.Equal(n, a["ctx"]!.GetValue<int>());
        Assert.Equal(n, a["stride"]!.GetValue<int>());
        var overlapped = CliRunner.Run("moe-stats", _mix, "--text", _text, "--max-tokens", "500", "--ctx", "64", "--stride", "16");
        Assert.True(overlapped.ExitCode == 0, overlapped.Stderr);
        Assert.Contains("500 tokens, top-2 of 4 experts (ctx 64, stride 16)", overlapped.Stdout);
        CliRunner.AssertUsageError(CliRunner.Run("moe-stats", _mix, "--text", _text, "--ctx", "256", "--stride", "300"), "moe-stats", "--stride must be between 1 and --ctx (256), got 300");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-stats", _mix, "--text", _text, "--stride", (n + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            $"--stride must be between 1 and --ctx ({n}, the model's context), got {n + 1}");
        CliRunner.AssertUsageError(CliRunner.Run("moe-stats", _mix, "--text", _text, "--ctx", "1"), "moe-stats", "--ctx must be at least 2, got 1");
        CliRunner.AssertUsageError(CliRunner.Run("moe-stats", _mix, "--text", _text, "--threads", "-1"), "moe-stats", "--threads must be between 0");
    }

    [Fact]
    public void MoeConvertBadInputsAreUsageErrorsOrOneLineErrors()
    {
        void Usage(string expect, params string[] args) => CliRunner.AssertUsageError(CliRunner.Run(["moe-convert", _mix, _d["o"], .. args]), "moe-convert", expect);
        void Fails(string expect, params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(["moe-convert", _mix, _d["o"], .. args]), expect);
        Usage("--group is not a parameter of moe_to_dense", "--group");
        Usage("--strategy is not a parameter of moe_prune", "--num-experts", "2", "--strategy", "mean");
        Usage("moe_prune needs --num-experts", "--method", "moe_prune", "--calibration", _text);
        Usage("--stride must be between 1 and --ctx (100), got 101", "--ctx", "100", "--stride", "101", "--calibration", _text);
        Usage("--num-experts must be at least 1, got 0", "--num-experts", "0");
        Usage("--method: expected moe_to_dense or moe_prune, got 'moe_merge'", "--method", "moe_merge");
        Fails("--ctx needs --calibration", "--strategy", "frequency", "--frequencies", _text, "--ctx", "128");
        Fails("--num-experts must be an integer from 1 to 4 (experts kept per layer; the model has 4), got 5", "--num-experts", "5", "--calibration", _text);
        Fails("--expert: '1.5' is not an integer", "--strategy", "expert", "--expert", "1.5");
        Fails("strategy expert needs --expert", "--strategy", "expert");
        Fails("--top-k is only used by strategy concat (this command uses mean)", "--top-k", "2");
        Fails("moe_prune with --group needs --calibration (a text file)", "--num-experts", "2", "--group");
        Fails("--calibration: file 'none.txt' not found", "--strategy", "frequency", "--calibration", "none.txt");
        Assert.False(Directory.Exists(_d["o"]));
        var json = CliRunner.Run("moe-convert", _mix, _d["o"], "--strategy", "expert", "--expert", "1,3", "--json");
        Assert.True(json.ExitCode == 0, json.Stderr);
        var doc = JsonNode.Parse(json.Stdout)!;
        Assert.Equal("moe_to_dense", doc["method"]!.GetValue<string>());
        Assert.Equal("expert", doc["strategy"]!.GetValue<string>());
        Assert.Equal(_mix, doc["model"]!.GetValue<string>());
        Assert.NotNull(doc["version"]);
    }

    [Fact]
    public void TheOutputFolderIsCheckedBeforeTheCalibrationPass()
    {
        // The calibration would fail (the text file is not a tokenizable model input here: TinyMixtral has no
        // tokenizer); the output's problem is reported first, so nothing long runs for an output that cannot be written.
        TinyMixtral.Write(_d["tiny"], 4);
        Directory.CreateDirectory(_d["full"]);
        File.WriteAllText(_d["full/x"], "x");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-convert", _d["tiny"], _d["full"], "--num-experts", "2", "--group", "--calibration", _text),
            "folder exists and is not empty (use --force to replace it)");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-convert", _d["tiny"], _d["tiny"], "--num-experts", "2", "--group", "--calibration", _text, "--force"),
            "the output folder is the input model");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-convert", _d["tiny"], _d["fresh"], "--num-experts", "2", "--group", "--calibration", _text),
            "no tokenizer.model");
    }

    [Fact]
    public void RecipeWindowParametersAreCheckedWithLineAndColumn()
    {
        List<string> Problems(string yaml)
        {
            var path = _d["w.yml"];
            File.WriteAllText(path, yaml);
            var e = Assert.Throws<Mistral.Merge.Recipes.RecipeException>(() => RecipePlanner.PlanFile(path).Dispose());
            return e.Problems.Select(p => p.Replace(path, "w.yml")).ToList();
        }
        Assert.Contains("w.yml:5:8: parameter 'ctx' needs 'calibration'",
            Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: mean\n  ctx: 128\n"));
        Assert.Contains("w.yml:6:11: parameter 'stride' must be an integer from 1 to 128 (at most ctx), got 200",
            Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2\n  ctx: 128\n  stride: 200\n  calibration: text.txt\n"));
        Assert.Contains("w.yml:5:8: parameter 'ctx' must be an integer from 2 to 2147483647 (tokens per calibration window), got 1",
            Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2\n  ctx: 1\n  calibration: text.txt\n"));
        File.WriteAllText(_d["d.yml"], "merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2\n  calibration: text.txt\n  ctx: 128\n  stride: 64\n");
        var dry = CliRunner.Run("merge", _d["d.yml"], "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stderr);
        Assert.Contains("(first 20000 tokens with BOS, windows of 128, stride 64)", dry.Stdout);
        var plan = CliRunner.Run("moe-convert", _mix, "--dry-run", "--num-experts", "2", "--calibration", _text);
        Assert.True(plan.ExitCode == 0, plan.Stderr);
        Assert.Contains("surgery:  moe_prune to 2 experts per layer: the most frequently routed experts", plan.Stdout);
        Assert.Contains($"windows of {ModelContext()})", plan.Stdout); // the default: the model's context
    }

    /// <summary>The synthesized Mixtral's max_position_embeddings capped at 2048 (the default window of moe-stats and calibrated surgeries).</summary>
    private int ModelContext()
    {
        using var f = ModelFolder.Open(_mix);
        return MoeForwardPass.DefaultContext(f.Config!);
    }

    [Fact]
    public void TheDefaultContextIsMaxPositionEmbeddingsCappedAt2048()
    {
        ModelConfig C(int maxPos) => new() { Json = new JsonObject(), MaxPositionEmbeddings = maxPos };
        Assert.Equal(2048, MoeForwardPass.DefaultContext(C(32768)));
        Assert.Equal(512, MoeForwardPass.DefaultContext(C(512)));
        Assert.Equal(256, MoeForwardPass.DefaultContext(C(0))); // no max_position_embeddings: the fixtures' window
    }
}
