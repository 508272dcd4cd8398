using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Hub;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>download ORG/NAME[@REVISION]</c>: a Hub model into the Hugging Face cache; prints its snapshot folder.</summary>
public static class DownloadCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Hub model id ORG/NAME, optionally @REVISION (a branch, tag or commit sha; default main)" };
        var json = CommonOptions.Json("model, repo, revision, commit, path, files, downloaded, downloaded_bytes");
        var cmd = new Command("download", "Download a Hugging Face Hub model (its safetensors, config and tokenizer files) into the Hugging Face cache and print its snapshot folder")
        {
            model, json,
        };
        return cmd.WithAction((p, token) =>
        {
            var text = p.GetValue(model)!;
            var id = HubId.TryParse(text) ?? throw new MergeException($"download: '{text}' is not a Hub model id ORG/NAME[@REVISION]");
            HubSnapshot snap;
            using (var display = new LazyProgress(p, $"download {id}"))
            {
                snap = HubDownloader.Download(id, ModelArguments.Options(p, display), token);
                display.Complete();
            }
            if (p.GetValue(json))
            {
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version, ["model"] = text, ["repo"] = id.Repo, ["revision"] = id.Revision,
                    ["commit"] = snap.Commit, ["path"] = snap.Path, ["files"] = snap.Files,
                    ["downloaded"] = snap.Downloaded, ["downloaded_bytes"] = snap.DownloadedBytes,
                });
            }
            else p.InvocationConfiguration.Output.WriteLine(snap.Path);
            return Cli.Ok;
        });
    }
}
