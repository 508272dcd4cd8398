using System.Globalization;
using System.Text;

namespace Mistral.Merge.Moe;

/// <summary>
/// SVG heatmap of a [layer][expert] table (e.g. selection frequency): one row per layer, one column per
/// expert, the value printed in every cell, a sequential white→blue scale from 0 to the table maximum
/// with a labelled colour bar, and a dashed reference line value (uniform share 1/E) marked on the bar.
/// </summary>
public static class RoutingHeatmap
{
    public static string Render(double[][] table, string title, string valueLabel = "selection frequency")
    {
        int layers = table.Length;
        if (layers == 0) throw new MergeException("heatmap: empty table");
        int experts = table[0].Length;
        foreach (var row in table) if (row.Length != experts) throw new MergeException("heatmap: rows of different lengths");
        double max = 0;
        foreach (var row in table) foreach (var v in row) if (double.IsFinite(v)) max = Math.Max(max, v);
        if (max <= 0) max = 1;

        int cell = experts <= 16 ? 56 : 32, cellH = layers <= 64 ? 26 : 14;
        int left = 80, top = 64, barW = 18, gap = 36;
        int gridW = experts * cell, gridH = layers * cellH;
        int width = left + gridW + gap + barW + 70, height = top + gridH + 40;
        bool printValues = cell >= 32 && cellH >= 14;
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n");
        s.Append(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>\n");
        s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"40\" font-size=\"11\" fill=\"#444\">{Escape(valueLabel)} per layer (rows) and expert (columns); uniform = {1.0 / experts:0.###}</text>\n");
        for (int e = 0; e < experts; e++)
            s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + e * cell + cell / 2}\" y=\"{top - 6}\" font-size=\"11\" text-anchor=\"middle\">e{e}</text>\n");
        for (int l = 0; l < layers; l++)
        {
            int y = top + l * cellH;
            s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 8}\" y=\"{y + cellH / 2 + 4}\" font-size=\"11\" text-anchor=\"end\">layer {l}</text>\n");
            for (int e = 0; e < experts; e++)
            {
                double v = table[l][e];
                double t = double.IsFinite(v) ? Math.Clamp(v / max, 0, 1) : 0;
                s.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left + e * cell}\" y=\"{y}\" width=\"{cell}\" height=\"{cellH}\" fill=\"{Colour(t)}\" stroke=\"white\" stroke-width=\"1\"><title>layer {l}, expert {e}: {v:0.####}</title></rect>\n");
                if (printValues)
                    s.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + e * cell + cell / 2}\" y=\"{y + cellH / 2 + 4}\" font-size=\"{(cell >= 48 ? 11 : 9)}\" text-anchor=\"middle\" fill=\"{(t > 0.55 ? "white" : "black")}\">{v:0.000}</text>\n");
            }
        }
        // Colour bar from 0 (bottom) to max (top).
        int bx = left + gridW + gap;
        const int steps = 40;
        for (int i = 0; i < steps; i++)
        {
            double t = 1 - (i + 0.5) / steps;
            s.Append(CultureInfo.InvariantCulture, $"<rect x=\"{bx}\" y=\"{top + (double)gridH * i / steps:0.##}\" width=\"{barW}\" height=\"{(double)gridH / steps + 0.5:0.##}\" fill=\"{Colour(t)}\"/>\n");
        }
        s.Append(CultureInfo.InvariantCulture, $"<rect x=\"{bx}\" y=\"{top}\" width=\"{barW}\" height=\"{gridH}\" fill=\"none\" stroke=\"#888\"/>\n");
        for (int i = 0; i <= 4; i++)
        {
            double v = max * i / 4;
            double y = top + gridH * (1 - i / 4.0);
            s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{bx + barW}\" y1=\"{y:0.##}\" x2=\"{bx + barW + 4}\" y2=\"{y:0.##}\" stroke=\"#444\"/><text x=\"{bx + barW + 7}\" y=\"{y + 4:0.##}\" font-size=\"10\">{v:0.###}</text>\n");
        }
        double uniform = 1.0 / experts;
        if (uniform <= max)
        {
            double y = top + gridH * (1 - uniform / max);
            s.Append(CultureInfo.InvariantCulture, $"<line x1=\"{bx - 4}\" y1=\"{y:0.##}\" x2=\"{bx + barW}\" y2=\"{y:0.##}\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/><text x=\"{bx - 6}\" y=\"{y + 4:0.##}\" font-size=\"9\" text-anchor=\"end\" fill=\"#d62728\">1/E</text>\n");
        }
        s.Append("</svg>\n");
        return s.ToString();
    }

    /// <summary>White (0) → dark blue (1), linear in RGB.</summary>
    private static string Colour(double t)
    {
        int r = (int)Math.Round(247 + (8 - 247) * t), g = (int)Math.Round(251 + (48 - 251) * t), b = (int)Math.Round(255 + (107 - 255) * t);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    private static string Escape(string x) => x.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
