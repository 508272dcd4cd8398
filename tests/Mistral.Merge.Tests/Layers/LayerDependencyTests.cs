using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace Mistral.Merge.Tests.Layers;

/// <summary>
/// The layers of docs/architecture.md, enforced on the compiled library: every type may use its own layer and the
/// layers below it, never one above. References are read from the metadata and the IL (base types, interfaces,
/// fields, signatures, locals, attributes and every token in a method body), so a fully qualified name written
/// inline counts as much as a using directive. Nested types (lambdas, iterators, async state machines) count as
/// the type that encloses them.
/// </summary>
public class LayerDependencyTests
{
    /// <summary>Bottom to top; a namespace belongs to the layer whose namespace is it or a prefix of it.</summary>
    public static readonly string[] Layers =
    [
        "Core", "Jinja", "Numerics", "IO", "Hub", "Models", "Recipes", "Merging", "Inference", "Moe", "Planning", "Cuda",
    ];

    private const string Root = "Mistral.Merge";

    [Fact]
    public void NoTypeReferencesALayerAboveItsOwn()
    {
        var violations = LayerViolations(typeof(MergeException).Assembly.Location);
        Assert.True(violations.Count == 0, $"{violations.Count} reference(s) to a higher layer:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void EveryNamespaceIsPlacedInTheLayerOrder()
    {
        using var pe = new PEReader(File.OpenRead(typeof(MergeException).Assembly.Location));
        var md = pe.GetMetadataReader();
        var unplaced = md.TypeDefinitions
            .Select(h => NamespaceOf(md, h))
            .Where(ns => ns == Root || ns.StartsWith(Root + ".", StringComparison.Ordinal))
            .Distinct()
            .Where(ns => LayerOf(ns) < 0)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(unplaced.Count == 0,
            $"namespaces outside the layer list (add their folder to {nameof(Layers)} and docs/architecture.md): {string.Join(", ", unplaced)}");
    }

    /// <summary>One line per (type, referenced type) pair that goes upwards, sorted.</summary>
    public static List<string> LayerViolations(string assemblyPath)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var found = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var handle in md.TypeDefinitions)
        {
            string from = FullName(md, Outermost(md, handle));
            int fromLayer = LayerOf(NamespaceOf(md, handle));
            if (fromLayer < 0) continue;   // compiler-embedded types, and namespaces the other test reports
            foreach (var target in References(md, pe, handle))
            {
                int toLayer = LayerOf(NamespaceOf(md, target));
                if (toLayer > fromLayer)
                    found.Add($"{from} → {FullName(md, Outermost(md, target))} ({Layers[fromLayer]} may not use {Layers[toLayer]})");
            }
        }
        return [.. found];
    }

    private static int LayerOf(string ns) => Array.FindIndex(Layers, l =>
        ns == $"{Root}.{l}" || ns.StartsWith($"{Root}.{l}.", StringComparison.Ordinal));

    private static TypeDefinitionHandle Outermost(MetadataReader md, TypeDefinitionHandle h)
    {
        while (md.GetTypeDefinition(h).GetDeclaringType() is { IsNil: false } outer) h = outer;
        return h;
    }

    private static string NamespaceOf(MetadataReader md, TypeDefinitionHandle h) =>
        md.GetString(md.GetTypeDefinition(Outermost(md, h)).Namespace);

    private static string FullName(MetadataReader md, TypeDefinitionHandle h)
    {
        var t = md.GetTypeDefinition(h);
        return $"{md.GetString(t.Namespace)}.{md.GetString(t.Name)}";
    }

    /// <summary>Every type definition of this assembly that <paramref name="type"/> mentions.</summary>
    private static IEnumerable<TypeDefinitionHandle> References(MetadataReader md, PEReader pe, TypeDefinitionHandle type)
    {
        var t = md.GetTypeDefinition(type);
        var refs = new List<TypeDefinitionHandle>();
        void Add(EntityHandle h) => refs.AddRange(TypesOf(md, h));
        void Attributes(CustomAttributeHandleCollection attributes)
        {
            foreach (var a in attributes) Add(md.GetCustomAttribute(a).Constructor);
        }

        if (!t.BaseType.IsNil) Add(t.BaseType);
        foreach (var i in t.GetInterfaceImplementations()) Add(md.GetInterfaceImplementation(i).Interface);
        foreach (var g in t.GetGenericParameters())
            foreach (var c in md.GetGenericParameter(g).GetConstraints()) Add(md.GetGenericParameterConstraint(c).Type);
        Attributes(t.GetCustomAttributes());
        foreach (var f in t.GetFields())
        {
            var field = md.GetFieldDefinition(f);
            refs.AddRange(field.DecodeSignature(Provider, null));
            Attributes(field.GetCustomAttributes());
        }
        foreach (var p in t.GetProperties())
        {
            var property = md.GetPropertyDefinition(p);
            var sig = property.DecodeSignature(Provider, null);
            refs.AddRange(sig.ReturnType.Concat(sig.ParameterTypes.SelectMany(x => x)));
            Attributes(property.GetCustomAttributes());
        }
        foreach (var e in t.GetEvents()) Add(md.GetEventDefinition(e).Type);
        foreach (var m in t.GetMethods())
        {
            var method = md.GetMethodDefinition(m);
            var sig = method.DecodeSignature(Provider, null);
            refs.AddRange(sig.ReturnType.Concat(sig.ParameterTypes.SelectMany(x => x)));
            Attributes(method.GetCustomAttributes());
            if (method.RelativeVirtualAddress == 0) continue;   // abstract, extern or interface method: no body
            var body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil)
                foreach (var local in md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(Provider, null)) refs.AddRange(local);
            foreach (var token in Tokens(body.GetILBytes()!)) Add(MetadataTokens.EntityHandle(token));
        }
        return refs;
    }

    /// <summary>The type definitions behind a token: a type, the type declaring a member, or those in a signature.</summary>
    private static IEnumerable<TypeDefinitionHandle> TypesOf(MetadataReader md, EntityHandle h)
    {
        switch (h.Kind)
        {
            case HandleKind.TypeDefinition:
                return [(TypeDefinitionHandle)h];
            case HandleKind.TypeSpecification:
                return md.GetTypeSpecification((TypeSpecificationHandle)h).DecodeSignature(Provider, null);
            case HandleKind.FieldDefinition:
                return [md.GetFieldDefinition((FieldDefinitionHandle)h).GetDeclaringType()];
            case HandleKind.MethodDefinition:
                return [md.GetMethodDefinition((MethodDefinitionHandle)h).GetDeclaringType()];
            case HandleKind.MemberReference:
                // A member of a generic instantiation (List<ModelConfig>.Add) names its types in the parent.
                return TypesOf(md, md.GetMemberReference((MemberReferenceHandle)h).Parent);
            case HandleKind.MethodSpecification:
                var spec = md.GetMethodSpecification((MethodSpecificationHandle)h);
                return TypesOf(md, spec.Method).Concat(spec.DecodeSignature(Provider, null).SelectMany(x => x));
            case HandleKind.StandaloneSignature:
                var sig = md.GetStandaloneSignature((StandaloneSignatureHandle)h).DecodeMethodSignature(Provider, null);
                return sig.ReturnType.Concat(sig.ParameterTypes.SelectMany(x => x));
            default:
                return [];   // TypeReference and the rest: another assembly's
        }
    }

    private static readonly Dictionary<short, OperandType> OperandTypes = typeof(OpCodes)
        .GetFields().Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value, o => o.OperandType);

    /// <summary>The metadata tokens among the operands of an IL stream.</summary>
    private static IEnumerable<int> Tokens(byte[] il)
    {
        for (int i = 0; i < il.Length;)
        {
            short code = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            switch (OperandTypes[code])
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineTok
                    or OperandType.InlineType or OperandType.InlineSig:
                    yield return BitConverter.ToInt32(il, i);
                    i += 4;
                    break;
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: i += 1; break;
                case OperandType.InlineVar: i += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: i += 8; break;
                case OperandType.InlineSwitch: i += 4 + 4 * BitConverter.ToInt32(il, i); break;
                default: i += 4; break;   // InlineBrTarget, InlineI, InlineString, ShortInlineR
            }
        }
    }

    private static readonly TypeCollector Provider = new();

    /// <summary>Decodes a signature into the type definitions of this assembly it names; others decode to nothing.</summary>
    private sealed class TypeCollector : ISignatureTypeProvider<ImmutableArray<TypeDefinitionHandle>, object?>
    {
        private static readonly ImmutableArray<TypeDefinitionHandle> None = [];

        public ImmutableArray<TypeDefinitionHandle> GetTypeFromDefinition(MetadataReader md, TypeDefinitionHandle h, byte kind) => [h];
        public ImmutableArray<TypeDefinitionHandle> GetTypeFromReference(MetadataReader md, TypeReferenceHandle h, byte kind) => None;
        public ImmutableArray<TypeDefinitionHandle> GetTypeFromSpecification(MetadataReader md, object? context, TypeSpecificationHandle h, byte kind) =>
            md.GetTypeSpecification(h).DecodeSignature(this, context);
        public ImmutableArray<TypeDefinitionHandle> GetPrimitiveType(PrimitiveTypeCode code) => None;
        public ImmutableArray<TypeDefinitionHandle> GetGenericTypeParameter(object? context, int index) => None;
        public ImmutableArray<TypeDefinitionHandle> GetGenericMethodParameter(object? context, int index) => None;
        public ImmutableArray<TypeDefinitionHandle> GetSZArrayType(ImmutableArray<TypeDefinitionHandle> element) => element;
        public ImmutableArray<TypeDefinitionHandle> GetArrayType(ImmutableArray<TypeDefinitionHandle> element, ArrayShape shape) => element;
        public ImmutableArray<TypeDefinitionHandle> GetByReferenceType(ImmutableArray<TypeDefinitionHandle> element) => element;
        public ImmutableArray<TypeDefinitionHandle> GetPointerType(ImmutableArray<TypeDefinitionHandle> element) => element;
        public ImmutableArray<TypeDefinitionHandle> GetPinnedType(ImmutableArray<TypeDefinitionHandle> element) => element;
        public ImmutableArray<TypeDefinitionHandle> GetGenericInstantiation(ImmutableArray<TypeDefinitionHandle> generic, ImmutableArray<ImmutableArray<TypeDefinitionHandle>> arguments) =>
            generic.AddRange(arguments.SelectMany(a => a));
        public ImmutableArray<TypeDefinitionHandle> GetModifiedType(ImmutableArray<TypeDefinitionHandle> modifier, ImmutableArray<TypeDefinitionHandle> unmodified, bool isRequired) =>
            unmodified.AddRange(modifier);
        public ImmutableArray<TypeDefinitionHandle> GetFunctionPointerType(MethodSignature<ImmutableArray<TypeDefinitionHandle>> sig) =>
            sig.ReturnType.AddRange(sig.ParameterTypes.SelectMany(p => p));
    }
}
