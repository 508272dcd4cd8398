namespace Mistral.Merge.Tests.Cuda;

/// <summary>--device / --offload on perplexity, generate and compare, as seen on a machine without a usable GPU.</summary>
public class CliDeviceTests
{
    private static string Model => SharedFixtures.PathOf("stories260k");
    private static string Text => SharedFixtures.PathOf("text", "tinystories-eval.txt");

    private static string[][] Commands(string device) =>
    [
        ["perplexity", Model, "--text", Text, "--max-tokens", "300", "--ctx", "64", "--json", "--device", device],
        ["generate", Model, "--prompt", "Once upon a time", "--max-new-tokens", "8", "--temperature", "0", "--json", "--device", device],
        ["compare", Model, SharedFixtures.PathOf("stories260k-bf16"), "--text", Text, "--max-tokens", "300", "--ctx", "64", "--json", "--device", device],
    ];

    [NoGpuFixtureFact]
    public void DeviceCudaWithoutAGpuFailsWithTheReasonOnEveryCommand()
    {
        var why = GpuTestContext.WhyNot;
        foreach (var args in Commands("cuda"))
        {
            var r = CliRunner.Run(args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Equal("", r.Stdout);
            Assert.Contains("--device cuda: CUDA is not usable here: " + why, r.Stderr);
            Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    [FixtureFact]
    public void UnknownDeviceIsRejectedOnEveryCommand()
    {
        foreach (var args in Commands("tpu"))
        {
            var r = CliRunner.Run(args);
            CliRunner.AssertUsageError(r, args[0], "--device tpu: unknown device (expected one of: auto, cpu, cuda)");
        }
    }

    [NoGpuFixtureFact]
    public void AutoWithoutAGpuIsExactlyTheCpuPath()
    {
        var auto = Commands("auto");
        var cpu = Commands("cpu");
        for (int i = 0; i < auto.Length; i++)
        {
            var a = CliRunner.Run(auto[i]);
            var c = CliRunner.Run(cpu[i]);
            Assert.Equal(0, a.ExitCode);
            Assert.Equal(0, c.ExitCode);
            // Identical results; only timings may differ.
            Assert.Equal(StripTimings(c.Stdout), StripTimings(a.Stdout));
        }
    }

    [FixtureFact]
    public void OffloadNeedsAGpu()
    {
        var r = CliRunner.Run("perplexity", Model, "--text", Text, "--max-tokens", "100", "--device", "cpu", "--offload");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--offload streams layers to a GPU; it needs --device cuda (or auto with a usable GPU)", r.Stderr);
    }

    private static string StripTimings(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, @"""(\w*tokens_per_second|seconds)"":[0-9.eE+-]+", "\"$1\":0");
}
