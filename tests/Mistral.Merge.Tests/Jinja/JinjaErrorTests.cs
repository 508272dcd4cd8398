using System.Text.Json.Nodes;
using Mistral.Merge.Jinja;

namespace Mistral.Merge.Tests.Jinja;

/// <summary>Where an error is reported: the line:column of the original text (before whitespace control), one line.</summary>
public sealed class JinjaErrorTests
{
    private static JinjaException Fails(string text, JsonObject? variables = null) =>
        Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(text, "t.jinja").Render(variables ?? []));

    [Fact]
    public void ARaiseExceptionNamesTheTemplateTheLineAndColumnOfTheCall()
    {
        var e = Fails("{%- if true %}\n  {{- raise_exception('System role not supported') }}\n{%- endif %}");
        Assert.Equal("chat template t.jinja, line 2:7: System role not supported", e.Message);
        Assert.Equal((2, 7), (e.Line, e.Column));
    }

    [Fact]
    public void ASyntaxErrorNamesWhereTheUnexpectedTokenIs()
    {
        var e = Fails("line one\n{% if x %}ok{% endif %}\n{{ a ; }}");
        Assert.Equal("chat template t.jinja, line 3:6: Unexpected character: ;", e.Message);
    }

    [Fact]
    public void AnUnclosedBlockIsAnErrorAtTheEndOfTheTemplate()
    {
        var e = Fails("{% for m in messages %}\n{{ m }}");
        Assert.Equal("Unexpected end of template: expected {% endfor %}", e.Reason);
        Assert.Equal((2, 8), (e.Line, e.Column));   // just past the last character
    }

    [Fact]
    public void ARuntimeErrorPointsAtTheInnermostFailingExpression()
    {
        var e = Fails("{{ 'a' }}\n  {{ 1 + messages }}", new JsonObject { ["messages"] = null });
        Assert.Equal("chat template t.jinja, line 2:8: Cannot perform operation on null values", e.Message);
    }

    [Fact]
    public void ARunawayRecursiveMacroIsAnErrorNotACrash()
    {
        var e = Fails("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
        Assert.Equal("Maximum call stack size exceeded", e.Reason);
    }

    [Fact]
    public void RenderingTheSameVariableTwiceIsRefused()
    {
        var e = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse("x", "t").Render(new Dictionary<string, JinjaValue> { ["true"] = JinjaBool.False }));
        Assert.Equal("Variable already declared: true", e.Reason);
    }

    [Fact]
    public void DeeplyNestedInputIsAnErrorNotAStackOverflow()
    {
        Assert.Equal("the template nests deeper than 400 levels", Fails("{{ " + new string('(', 100_000) + "1" + new string(')', 100_000) + " }}").Reason);
        Assert.Equal("the template nests deeper than 400 levels", Fails("{{ " + string.Concat(Enumerable.Repeat("not ", 100_000)) + "1 }}").Reason);
        Assert.Equal("the template nests deeper than 400 levels", Fails(string.Concat(Enumerable.Repeat("{% if true %}", 100_000))).Reason);
        Assert.Equal("the template nests deeper than 1000 levels", Fails("{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 100_000)) + " }}").Reason);
        Assert.Equal("the template nests deeper than 400 levels", Fails("{{ f" + string.Concat(Enumerable.Repeat("()", 100_000)) + " }}").Reason);
        Assert.Equal("Maximum call stack size exceeded", Fails("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").Reason);
    }
}
