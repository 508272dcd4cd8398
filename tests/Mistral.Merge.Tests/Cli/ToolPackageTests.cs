using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace Mistral.Merge.Tests.Cli;

/// <summary>
/// The CLI packs as a .NET tool (<c>dotnet pack</c> → <c>mistral-merge.VERSION.nupkg</c>) that <c>dotnet tool install</c>
/// installs from a local folder, and the installed command runs. Packs the already-built CLI of this test run's
/// configuration (<c>--no-build</c>), so it costs seconds, not a build.
/// </summary>
public class ToolPackageTests
{
    private static readonly string Configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    private static (int Code, string Output) Dotnet(string args, string workDir)
    {
        var psi = new ProcessStartInfo("dotnet", args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir };
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(180_000)) { p.Kill(entireProcessTree: true); return (-1, "timed out: dotnet " + args); }
        return (p.ExitCode, stdout + stderr.Result);
    }

    [Fact]
    public void TheCliPacksAsADotnetToolThatInstallsAndRunsFromALocalFolder()
    {
        using var d = new TempDir();
        string project = Path.Combine(SharedFixtures.RepoRoot, "src", "Mistral.Merge.Cli", "Mistral.Merge.Cli.csproj");
        var pack = Dotnet($"pack \"{project}\" -c {Configuration} --no-build --no-restore -o \"{d["feed"]}\"", SharedFixtures.RepoRoot);
        Assert.True(pack.Code == 0, pack.Output);
        string nupkg = Assert.Single(Directory.GetFiles(d["feed"], "*.nupkg"));
        Assert.Equal("mistral-merge.0.1.0.nupkg", Path.GetFileName(nupkg));

        using (var zip = ZipFile.OpenRead(nupkg))
        {
            var names = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("README.md", names);
            Assert.Contains("LICENSE", names);
            Assert.Contains("tools/net10.0/any/mistral-merge.dll", names);
            Assert.Contains("tools/net10.0/any/Mistral.Merge.dll", names);
            Assert.DoesNotContain(names, n => n.Contains("/de/", StringComparison.Ordinal));   // English only
            var settings = XDocument.Load(zip.GetEntry("tools/net10.0/any/DotnetToolSettings.xml")!.Open());
            var command = settings.Descendants("Command").Single();
            Assert.Equal("mistral-merge", command.Attribute("Name")!.Value);
            Assert.Equal("mistral-merge.dll", command.Attribute("EntryPoint")!.Value);
            var nuspec = XDocument.Load(zip.GetEntry("mistral-merge.nuspec")!.Open());
            XNamespace ns = nuspec.Root!.Name.Namespace;
            var meta = nuspec.Root.Element(ns + "metadata")!;
            Assert.Equal("mistral-merge", meta.Element(ns + "id")!.Value);
            Assert.Equal("README.md", meta.Element(ns + "readme")!.Value);
            Assert.Equal("LICENSE", meta.Element(ns + "license")!.Value);
            Assert.Equal("DotnetTool", meta.Element(ns + "packageTypes")!.Element(ns + "packageType")!.Attribute("name")!.Value);
            Assert.Empty(meta.Descendants(ns + "dependency"));   // a tool carries its dependencies inside
        }

        var install = Dotnet($"tool install --tool-path \"{d["tools"]}\" --add-source \"{d["feed"]}\" --ignore-failed-sources mistral-merge", d.Path);
        Assert.True(install.Code == 0, install.Output);
        string exe = Path.Combine(d["tools"], OperatingSystem.IsWindows() ? "mistral-merge.exe" : "mistral-merge");
        var psi = new ProcessStartInfo(exe, "methods --json") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var run = Process.Start(psi)!;
        string output = run.StandardOutput.ReadToEnd();
        Assert.True(run.WaitForExit(60_000));
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("\"slerp\"", output, StringComparison.Ordinal);
    }
}
