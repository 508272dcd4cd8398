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

    [Fact]
    public void TemplatesThatWouldRunForMinutesStopAtTheWorkBound()
    {
        const string TooMuch = "rendering takes more than 20,000,000 steps (nodes evaluated, characters and items built): too much work for a chat template";
        // a string doubled in a loop (took 2 GB, then "out of memory"), a list rebuilt item by item (quadratic: 30 s
        // for 10⁵ items), 10⁶ outputs and 9·10⁶ empty iterations (2.2 GB / 6 s before the bound)
        var doubled = Fails("{% set x = 'ab' %}{% for i in range(60) %}{% set x = x + x %}{% endfor %}{{ x|length }}");
        Assert.Equal((TooMuch, 1, 54), (doubled.Reason, doubled.Line, doubled.Column));
        Assert.Equal(TooMuch, Fails("{% set ns = namespace(a=[]) %}{% for i in range(100000) %}{% set ns.a = ns.a + [i] %}{% endfor %}").Reason);
        Assert.Equal(TooMuch, Fails("{% for i in range(1000000) %}xxxxxxxxxx{% endfor %}").Reason);
        Assert.Equal(TooMuch, Fails("{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}").Reason);
        Assert.Equal("range() of 1000001 numbers is too long", Fails("{% for i in range(1000001) %}{% endfor %}").Reason);
        // Well inside the bound: a million-character prompt built from a thousand messages.
        var messages = new JsonArray([.. Enumerable.Range(0, 1000).Select(i => (JsonNode)new JsonObject { ["role"] = i % 2 == 0 ? "user" : "assistant", ["content"] = new string('w', 1000) })]);
        var text = JinjaTemplate.Parse("{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}{% if not loop.last %}|{% endif %}{% endfor %}", "t")
            .Render(new JsonObject { ["messages"] = messages });
        Assert.Equal(1000 * 1000 + 500 * "<|user|>".Length + 500 * "<|assistant|>".Length + 999, text.Length);
    }
}
