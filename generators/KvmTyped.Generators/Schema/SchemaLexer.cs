using System.Collections.Generic;
using System.Globalization;

namespace KvmTyped.Generators.Schema;

internal enum TokenKind
{
    End,
    Identifier,
    Number,
    Punct,
}

internal readonly struct Token
{
    public Token(TokenKind kind, string text, int line, int column, ulong value = 0)
    {
        Kind = kind;
        Text = text;
        Line = line;
        Column = column;
        Value = value;
    }

    public TokenKind Kind { get; }

    public string Text { get; }

    public int Line { get; }

    public int Column { get; }

    public ulong Value { get; }

    public bool Is(string text) => Kind != TokenKind.End && Text == text;

    public override string ToString() => Kind == TokenKind.End ? "end of file" : "'" + Text + "'";
}

/// <summary>Splits schema text into tokens. Comments vanish; #include and #pragma once lines are ignored,
/// any other preprocessor line is reported as unsupported.</summary>
internal static class SchemaLexer
{
    private static readonly string[] TwoCharPuncts = { "<<", ">>" };

    public static List<Token> Tokenize(string text, string path, List<SchemaDiagnostic> diagnostics)
    {
        var tokens = new List<Token>();
        int i = 0, line = 1, lineStart = 0;
        var atLineStart = true;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '\n')
            {
                i++;
                line++;
                lineStart = i;
                atLineStart = true;
                continue;
            }
            if (c is ' ' or '\t' or '\r' or '\f' or '\v')
            {
                i++;
                continue;
            }
            var column = i - lineStart + 1;
            if (c == '/' && i + 1 < text.Length && text[i + 1] == '/')
            {
                while (i < text.Length && text[i] != '\n') i++;
                continue;
            }
            if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
            {
                var end = text.IndexOf("*/", i + 2, System.StringComparison.Ordinal);
                if (end < 0)
                {
                    diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "unterminated comment", new SourcePos(path, line, column, 2)));
                    end = text.Length - 2;
                }
                for (var k = i; k < end + 2 && k < text.Length; k++)
                {
                    if (text[k] == '\n')
                    {
                        line++;
                        lineStart = k + 1;
                    }
                }
                i = end + 2;
                continue;
            }
            if (c == '#' && atLineStart)
            {
                var start = i;
                while (i < text.Length && text[i] != '\n')
                {
                    if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] == '\n')
                    {
                        line++;
                        i += 2;
                        lineStart = i;
                        continue;
                    }
                    i++;
                }
                var directive = text.Substring(start + 1, i - start - 1).Trim();
                var isInclude = directive.StartsWith("include", System.StringComparison.Ordinal);
                var isOnce = directive.Replace(" ", string.Empty).Replace("\t", string.Empty) == "pragmaonce";
                if (!isInclude && !isOnce)
                {
                    var word = directive.Split(' ', '\t')[0];
                    diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported,
                        "unsupported construct: preprocessor directive '#" + word + "' (only #include and #pragma once are allowed)",
                        new SourcePos(path, line, column, word.Length + 1)));
                }
                continue;
            }
            atLineStart = false;
            if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_')) i++;
                tokens.Add(new Token(TokenKind.Identifier, text.Substring(start, i - start), line, column));
                continue;
            }
            if (char.IsDigit(c))
            {
                var start = i;
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_')) i++;
                var literal = text.Substring(start, i - start);
                if (!TryParseInteger(literal, out var value))
                {
                    diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "invalid integer literal '" + literal + "'", new SourcePos(path, line, column, literal.Length)));
                }
                tokens.Add(new Token(TokenKind.Number, literal, line, column, value));
                continue;
            }
            if (c == '\'')
            {
                var start = i;
                i++;
                ulong value = 0;
                if (i < text.Length && text[i] == '\\' && i + 1 < text.Length)
                {
                    value = text[i + 1] switch { 'n' => 10, 't' => 9, '0' => 0, 'r' => 13, _ => text[i + 1] };
                    i += 2;
                }
                else if (i < text.Length)
                {
                    value = text[i];
                    i++;
                }
                if (i >= text.Length || text[i] != '\'')
                {
                    diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "invalid character literal", new SourcePos(path, line, column)));
                }
                else
                {
                    i++;
                }
                tokens.Add(new Token(TokenKind.Number, text.Substring(start, i - start), line, column, value));
                continue;
            }
            string? punct = null;
            foreach (var two in TwoCharPuncts)
            {
                if (string.CompareOrdinal(text, i, two, 0, 2) == 0) punct = two;
            }
            if (punct is null && "{}()[];,*:=+-~|&^/%<>!?.".IndexOf(c) >= 0) punct = c.ToString();
            if (punct is null)
            {
                diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.SyntaxError, "unexpected character '" + c + "'", new SourcePos(path, line, column)));
                i++;
                continue;
            }
            tokens.Add(new Token(TokenKind.Punct, punct, line, column));
            i += punct.Length;
        }
        tokens.Add(new Token(TokenKind.End, string.Empty, line, i - lineStart + 1));
        return tokens;
    }

    private static bool TryParseInteger(string literal, out ulong value)
    {
        var body = literal.TrimEnd('u', 'U', 'l', 'L');
        if (body.StartsWith("0x", System.StringComparison.OrdinalIgnoreCase))
        {
            return ulong.TryParse(body.Substring(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
        if (body.Length > 1 && body[0] == '0')
        {
            value = 0;
            foreach (var ch in body)
            {
                if (ch is < '0' or > '7' || value > ulong.MaxValue >> 3) return false;
                value = value * 8 + (ulong)(ch - '0');
            }
            return true;
        }
        return ulong.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
