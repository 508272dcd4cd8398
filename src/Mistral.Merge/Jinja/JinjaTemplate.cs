using System.Text.Json.Nodes;

namespace Mistral.Merge.Jinja;

/// <summary>
/// A chat template, parsed once and rendered with a conversation. The language and its output are those of
/// @huggingface/jinja 0.5.11 (the implementation transformers.js renders chat templates with), byte for byte: its
/// lstrip_blocks/trim_blocks, its rendering of booleans (<c>true</c>), None and lists, its <c>tojson</c>, its errors.
/// Where that library is not Python Jinja (e.g. <c>{{ true }}</c> renders "true", not "True"), this follows the library.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly ProgramNode _program;
    private readonly string _text;

    /// <summary>Names the template in errors: a file, or a model folder's tokenizer_config.json.</summary>
    public string Source { get; }

    private JinjaTemplate(string text, string source, ProgramNode program)
    {
        _text = text;
        Source = source;
        _program = program;
    }

    /// <summary>Parses <paramref name="text"/>; a syntax error is a <see cref="JinjaException"/> naming
    /// <paramref name="source"/> and the line:column.</summary>
    public static JinjaTemplate Parse(string text, string source)
    {
        try
        {
            return new JinjaTemplate(text, source, JinjaParser.Parse(JinjaLexer.Tokenize(text), text.Length));
        }
        catch (JinjaError e)
        {
            throw Located(text, source, e);
        }
    }

    /// <summary>Renders with these variables (e.g. messages, add_generation_prompt, bos_token); <paramref name="now"/>
    /// is the clock of strftime_now (local time by default).</summary>
    public string Render(IReadOnlyDictionary<string, JinjaValue> variables, Func<DateTime>? now = null)
    {
        now ??= () => DateTime.Now;
        var env = new JinjaEnvironment();
        try
        {
            JinjaGlobals.Declare(env, now);
            foreach (var (name, value) in variables) env.Declare(name, value);
            return new JinjaInterpreter(now).EvaluateBlock(_program.Body, env).Value;
        }
        catch (JinjaError e)
        {
            throw Located(_text, Source, e);
        }
        catch (LoopControl)
        {
            throw new JinjaException(Source, 1, 1, "break or continue outside a for loop");
        }
    }

    /// <summary>Renders with variables given as JSON (the messages of a request, as transformers passes them).</summary>
    public string Render(JsonObject variables, Func<DateTime>? now = null) =>
        Render(variables.ToDictionary(p => p.Key, p => JinjaValue.FromJson(p.Value)), now);

    private static JinjaException Located(string text, string source, JinjaError e)
    {
        int offset = Math.Clamp(e.Offset < 0 ? 0 : e.Offset, 0, text.Length);
        int line = 1, column = 1;
        for (int i = 0; i < offset; i++)
        {
            if (text[i] == '\n') { line++; column = 1; }
            else column++;
        }
        return new JinjaException(source, line, column, e.Message);
    }
}
