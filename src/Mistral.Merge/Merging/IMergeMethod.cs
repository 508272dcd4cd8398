namespace Mistral.Merge.Merging;

public enum BaseRole
{
    /// <summary>The base is an ordinary input (linear, passthrough).</summary>
    Ordinary,
    /// <summary>Used when given (nuslerp).</summary>
    Optional,
    /// <summary>The method needs a base model (slerp, task vectors, model_stock).</summary>
    Required,
}

/// <summary>
/// What a method takes: its parameters (each declaration carries its type, default, range and scope), how it uses
/// the base, and the facts the parser, planner and output files ask about it (read here, never by testing the
/// method's name or type). Listing a parameter gives it its slot: its index among <see cref="Global"/> or
/// <see cref="PerModel"/>.
/// </summary>
public sealed class MethodSpec
{
    public MethodSpec(string name, ParamDef[] parameters, BaseRole baseRole)
    {
        Name = name;
        Params = parameters;
        Base = baseRole;
        Global = Scoped(parameters, ParamScope.Global);
        PerModel = Scoped(parameters, ParamScope.PerModel);
        var twice = parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (twice != null) throw new ArgumentException($"method '{name}' declares parameter '{twice.Key}' twice");
    }

    public string Name { get; }
    /// <summary>Every parameter, in declaration order.</summary>
    public IReadOnlyList<ParamDef> Params { get; }
    public BaseRole Base { get; }
    /// <summary>The global parameters in slot order (given once per tensor, under the recipe's or a slice's parameters).</summary>
    public IReadOnlyList<ParamDef> Global { get; }
    /// <summary>The per-model parameters in slot order (one value per input model).</summary>
    public IReadOnlyList<ParamDef> PerModel { get; }

    /// <summary>Draws random masks, so the output depends on --seed (said in the model card).</summary>
    public bool UsesRandomMasks { get; init; }
    /// <summary>The output takes the base's shape; other inputs are cropped to it (task vectors need base-shaped δ).</summary>
    public bool BaseShapesOutput { get; init; }
    /// <summary>With one input and no per-model parameter set, the output is that input: same dtype and shape make it a byte copy.</summary>
    public bool CopiesInput { get; init; }
    /// <summary>The method's usual name, as the model card says it (e.g. TIES); the recipe name when unset.</summary>
    public string? Title { get; init; }
    /// <summary>Where the method is described (its paper), linked from the model card as mergekit's card does.</summary>
    public string? Paper { get; init; }
    /// <summary>Every input must have the output's shape: embeddings of different vocabularies are an error, not cropped.</summary>
    public bool SameShapes { get; init; }
    public ParamDef? Find(string name) => Params.FirstOrDefault(p => p.Name == name);
    /// <summary>Per-model parameters of the base are not needed unless the base is an ordinary input.</summary>
    public bool BaseNeedsModelParams => Base == BaseRole.Ordinary;

    /// <summary>An empty value set for one scope's parameters.</summary>
    public ParamValues NewValues(ParamScope scope) => new(scope == ParamScope.Global ? Global : PerModel);

    private static ParamDef[] Scoped(ParamDef[] parameters, ParamScope scope)
    {
        var list = parameters.Where(p => p.Scope == scope).ToArray();
        for (int i = 0; i < list.Length; i++) list[i].Claim(i);
        return list;
    }
}

/// <summary>
/// Everything a method needs to know about one output tensor: its shape as [Rows, Cols] (Cols = last
/// axis), which input is the base, each input's non-base ordinal, and the resolved parameters, typed.
/// No files, no YAML, no threads.
/// </summary>
public sealed class MethodTask
{
    public required string OutputName { get; init; }
    public required long Rows { get; init; }
    public required long Cols { get; init; }
    public long Elements => Rows * Cols;
    /// <summary>Index of the base among the inputs, or -1.</summary>
    public required int BaseIndex { get; init; }
    /// <summary>Per input: position among the slice's non-base sources (-1 for the base); keys the random masks.</summary>
    public required int[] Ordinals { get; init; }
    /// <summary>The global parameters' values.</summary>
    public required ParamValues Global { get; init; }
    /// <summary>Per input, the per-model parameters' values.</summary>
    public required IReadOnlyList<ParamValues> PerModel { get; init; }
    public ulong Seed { get; init; }
    public int Count => Ordinals.Length;

    /// <summary>The resolved value of a global parameter.</summary>
    public T Get<T>(ParamDef<T> p) where T : notnull => Global.Get(p);
    /// <summary>The resolved value of a per-model parameter for <paramref name="input"/>.</summary>
    public T Get<T>(ParamDef<T> p, int input) where T : notnull => PerModel[input].Get(p);
    /// <summary>A per-model parameter that may be unset (no default, not required).</summary>
    public bool TryGet<T>(ParamDef<T> p, int input, out T value) where T : notnull => PerModel[input].TryGet(p, out value);
}

/// <summary>A block of whole rows [Row0, Row0 + RowCount) of every input, widened to float32.</summary>
public sealed class Chunk
{
    public required float[][] Inputs { get; init; }
    public long Row0 { get; set; }
    public int RowCount { get; set; }
    public int Length { get; set; }
    public long FlatOffset(long cols) => Row0 * cols;
    public Span<float> Input(int i) => Inputs[i].AsSpan(0, Length);
}

/// <summary>
/// One merge method. The executor calls, per output tensor: <see cref="Begin"/>; when
/// <see cref="NeedsReduction"/>, reduction passes: <see cref="Accumulate"/> over every chunk in row
/// order, then <see cref="Finish"/>, again while Finish asks for another pass; then
/// <see cref="Apply"/> over every chunk. Chunks are whole rows, the same ones in every pass, so the
/// memory is bounded by the chunk buffers whatever the tensor's size. <see cref="Accumulate"/> must
/// not modify the inputs; <see cref="Apply"/> may use them as scratch.
/// </summary>
public interface IMergeMethod
{
    MethodSpec Spec { get; }
    /// <summary>Checks one slice's sources; returns a problem or null.</summary>
    string? CheckSources(int sourceCount, bool hasBase);
    /// <summary>Checks one input's resolved per-model parameters together (the ranges check each alone);
    /// <paramref name="where"/> names the model and tensor. Returns a problem or null.</summary>
    string? CheckInput(ParamValues modelParams, string where);
    /// <summary>Checks a planned tensor's resolved parameters together; <paramref name="models"/> names each input. Returns a problem or null.</summary>
    string? CheckTask(MethodTask task, IReadOnlyList<string> models);
    bool NeedsReduction(MethodTask task);
    object? Begin(MethodTask task);
    void Accumulate(object? state, MethodTask task, Chunk chunk);
    /// <summary>Ends a reduction pass; true when another pass over every chunk is needed.</summary>
    bool Finish(object? state, MethodTask task);
    void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output);
}

/// <summary>Defaults for methods that need no reduction pass.</summary>
public abstract class MergeMethodBase : IMergeMethod
{
    public abstract MethodSpec Spec { get; }
    public abstract string? CheckSources(int sourceCount, bool hasBase);
    public virtual string? CheckInput(ParamValues modelParams, string where) => null;
    public virtual string? CheckTask(MethodTask task, IReadOnlyList<string> models) => null;
    public virtual bool NeedsReduction(MethodTask task) => false;
    public virtual object? Begin(MethodTask task) => null;
    public virtual void Accumulate(object? state, MethodTask task, Chunk chunk) { }
    public virtual bool Finish(object? state, MethodTask task) => false;
    public abstract void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output);
}
