using Mistral.Merge.Merging;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Declarations take their slots from their spec; resolved values are stored typed and read back by declaration.</summary>
public class ParamValuesTests
{
    private static readonly ParamDef<bool> Flag = new("flag", true);
    private static readonly ParamDef<double> Weight = new("weight", Required: true, Scope: ParamScope.PerModel);
    private static readonly ParamDef<string> Mode = new("mode");
    private static readonly ParamDef<double> Scale = new("scale", Scope: ParamScope.PerModel);
    private static readonly MethodSpec Spec = new("test", [Flag, Weight, Mode, Scale], BaseRole.Ordinary);

    [Fact]
    public void ScopesAndSlotsComeFromTheDeclarations()
    {
        Assert.Equal([Flag, Mode], Spec.Global);
        Assert.Equal([Weight, Scale], Spec.PerModel);
        Assert.Equal((0, 1, 0, 1), (Flag.Slot, Mode.Slot, Weight.Slot, Scale.Slot));
    }

    [Fact]
    public void ValuesAreStoredTypedAndUnsetOnesSaySo()
    {
        var g = Spec.NewValues(ParamScope.Global);
        g.Set(Flag, false);
        Assert.False(g.Get(Flag));
        Assert.False(g.TryGet(Mode, out _));
        Assert.Throws<InvalidOperationException>(() => g.Get(Mode));
        g.Set(Mode, "x");
        Assert.Equal("x", g.Get(Mode));
        Assert.Equal([(Flag, (object)false), (Mode, "x")], g.Assigned().Select(a => (a.Def, a.Value)));

        var m = Spec.NewValues(ParamScope.PerModel);
        Assert.False(m.AnySet);
        m.Set(Weight, 0.25);
        Assert.True(m.AnySet);
        Assert.Equal(0.25, m.Get(Weight));
        Assert.Throws<ArgumentException>(() => m.Set(Scale, "not a number"));
    }

    [Fact]
    public void ADeclarationIsReadOnlyFromItsOwnScopeAndSpec()
    {
        var m = Spec.NewValues(ParamScope.PerModel);
        Assert.Throws<InvalidOperationException>(() => m.Get(Flag)); // a global one in per-model values
        var other = new ParamDef<double>("other", 1.0, Scope: ParamScope.PerModel); // never listed by a spec
        Assert.Throws<InvalidOperationException>(() => m.Get(other));
    }

    [Fact]
    public void ASpecRefusesANameTwice()
        => Assert.Throws<ArgumentException>(() => new MethodSpec("twice", [new ParamDef<bool>("x"), new ParamDef<double>("x")], BaseRole.Ordinary));
}
