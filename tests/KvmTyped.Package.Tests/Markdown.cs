using System.Text.RegularExpressions;

namespace KvmTyped.Package.Tests;

/// <summary>The fenced code blocks of a Markdown file, with the language after the opening fence and the line the
/// block starts on.</summary>
internal static partial class Markdown
{
    public sealed record Block(string File, int Line, string Language, string Text);

    [GeneratedRegex(@"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Fence();

    public static IReadOnlyList<Block> Blocks(string path)
    {
        var text = File.ReadAllText(path).Replace("\r\n", "\n", StringComparison.Ordinal);
        return Fence().Matches(text)
            .Select(m => new Block(path, 1 + text.AsSpan(0, m.Index).Count('\n'), m.Groups[1].Value, m.Groups[2].Value))
            .ToList();
    }
}
