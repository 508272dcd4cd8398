namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// convert_hf_to_gguf.py's <c>LlamaModel.permute</c>: HF's Llama checkpoints rotate the two halves of each head
/// (rotate_half), llama.cpp's "llama" architecture rotates adjacent pairs, so each head's rows are reordered:
/// <c>w.reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2)</c> — output row <c>h·d + 2j + i</c> is input row
/// <c>h·d + i·d/2 + j</c>. For k_proj, <c>n_head</c> is the key/value head count.
/// </summary>
public static class QkPermutation
{
    public static float[] Apply(float[] w, int heads, int cols)
    {
        int rows = w.Length / cols, d = rows / heads, half = d / 2;
        var o = new float[w.Length];
        for (int h = 0; h < heads; h++)
            for (int j = 0; j < half; j++)
                for (int i = 0; i < 2; i++)
                    Array.Copy(w, (long)(h * d + i * half + j) * cols, o, (long)(h * d + 2 * j + i) * cols, cols);
        return o;
    }
}
