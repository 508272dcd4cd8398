using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Models;

/// <summary>Writes a PEFT adapter folder: adapter_config.json and F32 tensors named under base_model.model.</summary>
internal static class PeftAdapter
{
    public static string Write(string dir, JsonObject config, params (string Tensor, long[] Shape, float[] Values)[] tensors)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, LoraAdapter.ConfigFileName), config.ToJsonString());
        var header = new JsonObject();
        var data = new MemoryStream();
        foreach (var (t, shape, values) in tensors)
        {
            long begin = data.Length;
            foreach (var v in values) data.Write(BitConverter.GetBytes(v));
            header["base_model.model." + t] = new JsonObject { ["dtype"] = "F32", ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()), ["data_offsets"] = new JsonArray(begin, data.Length) };
        }
        var h = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var f = File.Create(Path.Combine(dir, LoraAdapter.WeightsFileName));
        f.Write(BitConverter.GetBytes((ulong)h.Length));
        f.Write(h);
        f.Write(data.ToArray());
        return dir;
    }
}
