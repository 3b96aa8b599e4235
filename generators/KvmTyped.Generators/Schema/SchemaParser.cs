using System;
using System.Collections.Generic;

namespace KvmTyped.Generators.Schema;

/// <summary>Parses one schema file (the C subset documented in schemas/README.md) into declarations whose
/// typedef names are still unresolved. Errors become diagnostics; parsing resumes at the next declaration.</summary>
internal sealed class SchemaParser
{
    private readonly List<Token> _tokens;
    private readonly string _path;
    private readonly List<SchemaDiagnostic> _diagnostics;
    private readonly List<StructDef> _structs = new();
    private readonly List<EnumDef> _enums = new();
    private readonly List<TypedefDef> _typedefs = new();
    private readonly Dictionary<string, long> _constants = new(StringComparer.Ordinal);
    private int _pos;
    private int _anonymous;
    private int _depth;

    /// <summary>Nesting (parentheses, declarators, nested structs) deeper than this is refused, so a hostile or
    /// broken schema cannot overflow the compiler's stack.</summary>
    private const int MaxDepth = 200;

    /// <summary>The marker of a member (after its declarator, or before its type) or, after the closing brace at file
    /// scope, of a whole struct that only some kernels have. schemas/kvmtyped-types.h defines it empty for gcc.</summary>
    public const string OptionalMarker = "__kvmt_optional";

    private SchemaParser(string path, string text)
    {
        _path = path;
        _diagnostics = new List<SchemaDiagnostic>();
        _tokens = SchemaLexer.Tokenize(text, path, _diagnostics);
    }

    /// <summary>Parses schema text. The path is only used to name positions.</summary>
    public static SchemaUnit Parse(string path, string text)
    {
        var parser = new SchemaParser(path, text);
        parser.ParseFile();
        return new SchemaUnit(path, parser._structs.ToEquatableArray(), parser._enums.ToEquatableArray(),
            parser._typedefs.ToEquatableArray(), parser._diagnostics.ToEquatableArray());
    }

    private Token Cur => _tokens[_pos];

    private Token Peek(int n) => _tokens[Math.Min(_pos + n, _tokens.Count - 1)];

    private Token Next()
    {
        var t = _tokens[_pos];
        if (_pos < _tokens.Count - 1) _pos++;
        return t;
    }

    private SourcePos PosOf(Token t) => new(_path, t.Line, t.Column, Math.Max(1, t.Text.Length));

    private sealed class ParseError : Exception
    {
    }

    private ParseError Error(string id, string message, Token at)
    {
        _diagnostics.Add(new SchemaDiagnostic(id, message, PosOf(at)));
        return new ParseError();
    }

    private void Report(string id, string message, Token at) => _diagnostics.Add(new SchemaDiagnostic(id, message, PosOf(at)));

    private void Expect(string punct)
    {
        if (!Cur.Is(punct)) throw Error(SchemaDiagnosticIds.SyntaxError, "expected '" + punct + "' but found " + Cur, Cur);
        Next();
    }

    private void ParseFile()
    {
        while (Cur.Kind != TokenKind.End)
        {
            var before = _pos;
            try
            {
                ParseTopLevel();
            }
            catch (ParseError)
            {
                Recover(before);
            }
        }
    }

    private void Recover(int before)
    {
        var depth = 0;
        for (var i = before; i < _pos; i++)
        {
            if (_tokens[i].Is("{")) depth++;
            else if (_tokens[i].Is("}")) depth = Math.Max(0, depth - 1);
        }
        if (_pos == before) Next();
        while (Cur.Kind != TokenKind.End)
        {
            var t = Next();
            if (t.Is("{")) depth++;
            else if (t.Is("}")) depth = Math.Max(0, depth - 1);
            else if (t.Is(";") && depth == 0) return;
        }
    }

    private sealed class Specifiers
    {
        public CType Type = CType.Int;
        public bool IsTypedef;
        public int AlignAttr;
        public bool Packed;
        public int DefinedStruct = -1;
        public int DefinedEnum = -1;
        public bool Optional;
        public Token Start;
    }

    private void ParseTopLevel()
    {
        if (Cur.Is(";"))
        {
            Next();
            return;
        }
        var spec = ParseSpecifiers(null);
        if (spec.Optional)
        {
            if (spec.IsTypedef || spec.DefinedStruct < 0)
            {
                throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: '" + OptionalMarker + "' marks a struct member, or a struct after its closing brace", spec.Start);
            }
            _structs[spec.DefinedStruct] = _structs[spec.DefinedStruct] with { Optional = true };
        }
        if (spec.Packed || spec.AlignAttr > 0)
        {
            throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: an attribute before the type of a file-scope declaration (put it after the struct's closing brace)", spec.Start);
        }
        if (spec.IsTypedef)
        {
            var first = true;
            while (true)
            {
                var (name, type, at) = ParseDeclarator(spec.Type);
                var attributeAt = Cur;
                ParseAttributes(out var typedefPacked, out var typedefAlign, out _, allowRecordOnly: false);
                if (typedefPacked || typedefAlign > 0)
                {
                    throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: packed or aligned on a typedef (declare the attribute on the struct or member)", attributeAt);
                }
                if (name is null) throw Error(SchemaDiagnosticIds.SyntaxError, "expected a typedef name", at);
                if (first && type.Equals(spec.Type) && spec.DefinedStruct >= 0 && _structs[spec.DefinedStruct].IsAnonymous)
                {
                    var s = _structs[spec.DefinedStruct];
                    _structs[spec.DefinedStruct] = s with { Name = name, Spelling = name, IsAnonymous = false };
                    type = type with { Name = name };
                }
                else if (first && type.Equals(spec.Type) && spec.DefinedEnum >= 0 && _enums[spec.DefinedEnum].IsAnonymous)
                {
                    _enums[spec.DefinedEnum] = _enums[spec.DefinedEnum] with { Name = name, IsAnonymous = false };
                    type = type with { Name = name };
                }
                _typedefs.Add(new TypedefDef(name, type, PosOf(at)));
                first = false;
                if (Cur.Is(","))
                {
                    Next();
                    continue;
                }
                break;
            }
            Expect(";");
            return;
        }
        if (Cur.Is(";"))
        {
            Next();
            return;
        }
        if (Cur.Kind == TokenKind.Identifier && !IsKeywordStart(Cur) || Cur.Is("*") || Cur.Is("("))
        {
            throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: variable or function declaration at file scope (schemas declare types only)", Cur);
        }
        throw Error(SchemaDiagnosticIds.SyntaxError, "expected ';' after a declaration but found " + Cur, Cur);
    }

    private static bool IsKeywordStart(Token t) => t.Text is "struct" or "union" or "enum" or "typedef";

    private Specifiers ParseSpecifiers(string? owner)
    {
        var spec = new Specifiers { Start = Cur };
        int signedCount = 0, unsignedCount = 0, charCount = 0, shortCount = 0, intCount = 0, longCount = 0, boolCount = 0, floatCount = 0, doubleCount = 0, voidCount = 0;
        CType? named = null;
        while (Cur.Kind == TokenKind.Identifier)
        {
            var t = Cur;
            var any = named is not null || signedCount + unsignedCount + charCount + shortCount + intCount + longCount + boolCount + floatCount + doubleCount + voidCount > 0;
            switch (t.Text)
            {
                case "typedef": spec.IsTypedef = true; Next(); continue;
                case "const": case "volatile": case "__const": case "__volatile__": Next(); continue;
                case OptionalMarker: spec.Optional = true; Next(); continue;
                case "signed": case "__signed__": signedCount++; Next(); continue;
                case "unsigned": unsignedCount++; Next(); continue;
                case "char": charCount++; Next(); continue;
                case "short": shortCount++; Next(); continue;
                case "int": intCount++; Next(); continue;
                case "long": longCount++; Next(); continue;
                case "_Bool": boolCount++; Next(); continue;
                case "float": floatCount++; Next(); continue;
                case "double": doubleCount++; Next(); continue;
                case "void": voidCount++; Next(); continue;
                case "struct":
                case "union":
                    if (any) throw Error(SchemaDiagnosticIds.SyntaxError, "expected ';' after a declaration, before '" + t.Text + "'", t);
                    named = ParseRecordSpecifier(owner, spec);
                    continue;
                case "enum":
                    if (any) throw Error(SchemaDiagnosticIds.SyntaxError, "expected ';' after a declaration, before '" + t.Text + "'", t);
                    named = ParseEnumSpecifier(spec);
                    continue;
                case "__attribute__":
                case "__attribute":
                    ParseAttributes(out var packed, out var align, out _, allowRecordOnly: false);
                    spec.Packed |= packed;
                    spec.AlignAttr = Math.Max(spec.AlignAttr, align);
                    continue;
                case "static": case "extern": case "inline": case "register": case "auto": case "_Thread_local": case "_Atomic":
                case "_Complex": case "_Alignas": case "__int128": case "_Static_assert": case "__extension__": case "restrict":
                case "__restrict": case "_Float128": case "__float128": case "typeof": case "__typeof__": case "sizeof":
                    throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: '" + t.Text + "'", t);
                default:
                    if (any) goto done;
                    named = new CType(CTypeKind.Named, t.Text);
                    Next();
                    continue;
            }
        }
    done:
        if (named is not null)
        {
            spec.Type = named;
            return spec;
        }
        var primitive = signedCount + unsignedCount + charCount + shortCount + intCount + longCount + boolCount + floatCount + doubleCount + voidCount;
        if (primitive == 0) throw Error(SchemaDiagnosticIds.SyntaxError, "expected a type but found " + Cur, Cur);
        if (signedCount > 0 && unsignedCount > 0) throw Error(SchemaDiagnosticIds.SyntaxError, "both signed and unsigned", spec.Start);
        var u = unsignedCount > 0;
        CTypeKind kind;
        if (voidCount > 0) kind = CTypeKind.Void;
        else if (boolCount > 0) kind = CTypeKind.Bool;
        else if (floatCount > 0) kind = CTypeKind.Float;
        else if (doubleCount > 0)
        {
            if (longCount > 0) throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: 'long double' (its size differs between compilers and models)", spec.Start);
            kind = CTypeKind.Double;
        }
        else if (charCount > 0) kind = u ? CTypeKind.UChar : signedCount > 0 ? CTypeKind.SChar : CTypeKind.Char;
        else if (shortCount > 0) kind = u ? CTypeKind.UShort : CTypeKind.Short;
        else if (longCount == 1) kind = u ? CTypeKind.ULong : CTypeKind.Long;
        else if (longCount == 2) kind = u ? CTypeKind.ULongLong : CTypeKind.LongLong;
        else if (longCount > 2) throw Error(SchemaDiagnosticIds.SyntaxError, "'long long long' is too long", spec.Start);
        else kind = u ? CTypeKind.UInt : CTypeKind.Int;
        if (voidCount + boolCount + floatCount + doubleCount + charCount > 1) throw Error(SchemaDiagnosticIds.SyntaxError, "two types in one declaration", spec.Start);
        spec.Type = new CType(kind);
        return spec;
    }

    private CType ParseRecordSpecifier(string? owner, Specifiers spec)
    {
        var keyword = Next();
        var isUnion = keyword.Text == "union";
        ParseAttributes(out var packed, out var align, out var pai, allowRecordOnly: true);
        string? tag = null;
        var at = keyword;
        if (Cur.Kind == TokenKind.Identifier && !IsAttribute(Cur))
        {
            at = Cur;
            tag = Next().Text;
        }
        var kind = isUnion ? CTypeKind.Union : CTypeKind.Struct;
        if (!Cur.Is("{"))
        {
            if (tag is null) throw Error(SchemaDiagnosticIds.SyntaxError, "expected a tag or '{' after '" + keyword.Text + "'", Cur);
            return new CType(kind, tag);
        }
        var name = tag ?? (owner is null ? "__anon" : owner + "__anon") + (++_anonymous).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var fields = ParseMembers(name, isUnion);
        ParseAttributes(out var packed2, out var align2, out var pai2, allowRecordOnly: true);
        // At file scope, the marker after the closing brace makes the struct itself optional; inside a struct it
        // belongs to the member being declared.
        var optional = false;
        while (owner is null && Cur.Kind == TokenKind.Identifier && Cur.Text == OptionalMarker)
        {
            optional = true;
            Next();
            ParseAttributes(out var packed3, out var align3, out var pai3, allowRecordOnly: true);
            packed2 |= packed3;
            align2 = Math.Max(align2, align3);
            pai2 |= pai3;
        }
        var def = new StructDef(name, isUnion, tag is null ? string.Empty : keyword.Text + " " + tag, packed || packed2,
            Math.Max(align, align2), pai || pai2, tag is null, fields.ToEquatableArray(), PosOf(at), Optional: optional);
        _structs.Add(def);
        spec.DefinedStruct = _structs.Count - 1;
        return new CType(kind, name);
    }

    private List<FieldDef> ParseMembers(string owner, bool isUnion)
    {
        Enter();
        try
        {
            return ParseMembersInner(owner, isUnion);
        }
        finally
        {
            _depth--;
        }
    }

    private List<FieldDef> ParseMembersInner(string owner, bool isUnion)
    {
        Expect("{");
        var fields = new List<FieldDef>();
        while (!Cur.Is("}"))
        {
            if (Cur.Kind == TokenKind.End) throw Error(SchemaDiagnosticIds.SyntaxError, "expected '}' before end of file", Cur);
            if (Cur.Is(";"))
            {
                Next();
                continue;
            }
            var spec = ParseSpecifiers(owner);
            if (spec.IsTypedef) throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: typedef inside a struct", spec.Start);
            if (Cur.Is(";"))
            {
                if (spec.DefinedStruct >= 0 && _structs[spec.DefinedStruct].IsAnonymous && spec.Type.IsRecord)
                {
                    fields.Add(new FieldDef(null, spec.Type, -1, spec.AlignAttr, spec.Packed, PosOf(spec.Start)));
                }
                Next();
                continue;
            }
            while (true)
            {
                string? name = null;
                var type = spec.Type;
                var at = Cur;
                var width = -1;
                if (!Cur.Is(":"))
                {
                    (name, type, at) = ParseDeclarator(spec.Type);
                    if (name is null) throw Error(SchemaDiagnosticIds.SyntaxError, "expected a member name", at);
                }
                if (Cur.Is(":"))
                {
                    var colon = Next();
                    var widthToken = Cur;
                    var value = ParseExpression(0);
                    if (value < 0)
                    {
                        throw Error(SchemaDiagnosticIds.BitfieldTooWide, "bitfield '" + (name ?? "(unnamed)") + "' has a negative width", widthToken);
                    }
                    if (value > 64)
                    {
                        throw Error(SchemaDiagnosticIds.BitfieldTooWide, "bitfield '" + (name ?? "(unnamed)") + "' is " + value.ToString(System.Globalization.CultureInfo.InvariantCulture) + " bits, wider than its type " + type, widthToken);
                    }
                    width = (int)value;
                    if (name is null) at = colon;
                }
                ParseAttributes(out var packed, out var align, out _, allowRecordOnly: false);
                var optional = spec.Optional;
                while (Cur.Kind == TokenKind.Identifier && Cur.Text == OptionalMarker)
                {
                    optional = true;
                    Next();
                    ParseAttributes(out var packedAfter, out var alignAfter, out _, allowRecordOnly: false);
                    packed |= packedAfter;
                    align = Math.Max(align, alignAfter);
                }
                if (type.Kind == CTypeKind.Function) throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: a function as a struct member (use a function pointer)", at);
                fields.Add(new FieldDef(name, type, width, Math.Max(spec.AlignAttr, align), spec.Packed || packed, PosOf(at), optional));
                if (Cur.Is(","))
                {
                    Next();
                    continue;
                }
                break;
            }
            Expect(";");
        }
        Next();
        for (var i = 0; i < fields.Count; i++)
        {
            if (fields[i].Type.Kind == CTypeKind.Array && fields[i].Type.Length < 0 && (i != fields.Count - 1 || isUnion))
            {
                _diagnostics.Add(new SchemaDiagnostic(SchemaDiagnosticIds.Unsupported,
                    "unsupported construct: flexible array member '" + fields[i].Name + "' must be the last member of a struct", fields[i].Pos));
            }
        }
        return fields;
    }

    private CType ParseEnumSpecifier(Specifiers spec)
    {
        var keyword = Next();
        ParseAttributes(out _, out _, out _, allowRecordOnly: false);
        string? tag = null;
        var at = keyword;
        if (Cur.Kind == TokenKind.Identifier)
        {
            at = Cur;
            tag = Next().Text;
        }
        if (!Cur.Is("{"))
        {
            if (tag is null) throw Error(SchemaDiagnosticIds.SyntaxError, "expected a tag or '{' after 'enum'", Cur);
            return new CType(CTypeKind.Enum, tag);
        }
        Next();
        var members = new List<EnumMember>();
        long next = 0;
        var nextOverflows = false;
        while (!Cur.Is("}"))
        {
            if (Cur.Kind != TokenKind.Identifier) throw Error(SchemaDiagnosticIds.SyntaxError, "expected an enumerator name but found " + Cur, Cur);
            var nameToken = Next();
            var value = next;
            if (Cur.Is("="))
            {
                Next();
                value = ParseExpression(0);
            }
            else if (nextOverflows)
            {
                throw Overflow(nameToken);
            }
            if (_constants.ContainsKey(nameToken.Text))
            {
                Report(SchemaDiagnosticIds.ConflictingRedefinition, "enumerator '" + nameToken.Text + "' is defined twice", nameToken);
            }
            _constants[nameToken.Text] = value;
            members.Add(new EnumMember(nameToken.Text, value));
            nextOverflows = value == long.MaxValue;
            next = nextOverflows ? 0 : value + 1;
            if (Cur.Is(","))
            {
                Next();
                continue;
            }
            if (!Cur.Is("}")) throw Error(SchemaDiagnosticIds.SyntaxError, "expected ',' or '}' but found " + Cur, Cur);
        }
        Next();
        ParseAttributes(out var packed, out _, out _, allowRecordOnly: false);
        if (packed) Report(SchemaDiagnosticIds.Unsupported, "unsupported construct: packed enum", at);
        var name = tag ?? (members.Count > 0 ? "__anon_enum_" + members[0].Name : "__anon_enum" + (++_anonymous).ToString(System.Globalization.CultureInfo.InvariantCulture));
        _enums.Add(new EnumDef(name, tag is null, members.ToEquatableArray(), PosOf(at)));
        spec.DefinedEnum = _enums.Count - 1;
        return new CType(CTypeKind.Enum, name);
    }

    private (string? Name, CType Type, Token At) ParseDeclarator(CType baseType)
    {
        var at = Cur;
        var (name, nameToken, build) = ParseDeclaratorCore();
        var type = build(baseType);
        var levels = 0;
        for (var t = type; t is not null; t = t.Target)
        {
            if (++levels > MaxDepth)
            {
                throw Error(SchemaDiagnosticIds.SyntaxError, "declarations or expressions nested more than " + MaxDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " deep", at);
            }
        }
        return (name, type, name is null ? at : nameToken);
    }

    private (string? Name, Token NameToken, Func<CType, CType> Build) ParseDeclaratorCore()
    {
        Enter();
        try
        {
            return ParseDeclaratorCoreInner();
        }
        finally
        {
            _depth--;
        }
    }

    private void Enter()
    {
        if (++_depth > MaxDepth)
        {
            _depth--;
            throw Error(SchemaDiagnosticIds.SyntaxError, "declarations or expressions nested more than " + MaxDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " deep", Cur);
        }
    }

    private (string? Name, Token NameToken, Func<CType, CType> Build) ParseDeclaratorCoreInner()
    {
        var pointers = 0;
        while (Cur.Is("*"))
        {
            Next();
            if (++pointers > MaxDepth)
            {
                throw Error(SchemaDiagnosticIds.SyntaxError, "declarations or expressions nested more than " + MaxDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " deep", Cur);
            }
            while (Cur.Kind == TokenKind.Identifier && Cur.Text is "const" or "volatile" or "__restrict" or "restrict" or "__const") Next();
        }
        string? name = null;
        var nameToken = Cur;
        Func<CType, CType> inner = t => t;
        if (Cur.Is("(") && (Peek(1).Is("*") || Peek(1).Is("(")))
        {
            Next();
            (name, nameToken, inner) = ParseDeclaratorCore();
            Expect(")");
        }
        else if (Cur.Kind == TokenKind.Identifier && !IsAttribute(Cur))
        {
            nameToken = Cur;
            name = Next().Text;
        }
        var suffixes = new List<long>();
        const long FunctionSuffix = long.MinValue;
        while (true)
        {
            if (Cur.Is("["))
            {
                var open = Next();
                if (Cur.Is("]"))
                {
                    suffixes.Add(-1);
                }
                else
                {
                    var sizeToken = Cur;
                    var length = ParseExpression(0);
                    if (length <= 0)
                    {
                        throw Error(SchemaDiagnosticIds.BadArraySize, "array '" + (name ?? "(unnamed)") + "' has size " + length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "; sizes must be positive (use [] for a flexible array member)", sizeToken);
                    }
                    if (length > SchemaLimits.MaxBytes)
                    {
                        throw Error(SchemaDiagnosticIds.LimitExceeded, "array '" + (name ?? "(unnamed)") + "' has " + length.ToString(System.Globalization.CultureInfo.InvariantCulture) + " elements, more than the limit of " + SchemaLimits.MaxBytesText, sizeToken);
                    }
                    suffixes.Add(length);
                }
                _ = open;
                Expect("]");
            }
            else if (Cur.Is("("))
            {
                var depth = 0;
                do
                {
                    if (Cur.Kind == TokenKind.End) throw Error(SchemaDiagnosticIds.SyntaxError, "unterminated parameter list", Cur);
                    if (Cur.Is("(")) depth++;
                    else if (Cur.Is(")")) depth--;
                    Next();
                }
                while (depth > 0);
                suffixes.Add(FunctionSuffix);
            }
            else
            {
                break;
            }
            if (pointers + suffixes.Count > MaxDepth)
            {
                throw Error(SchemaDiagnosticIds.SyntaxError, "declarations or expressions nested more than " + MaxDepth.ToString(System.Globalization.CultureInfo.InvariantCulture) + " deep", Cur);
            }
        }
        CType Build(CType t)
        {
            for (var i = 0; i < pointers; i++) t = new CType(CTypeKind.Pointer, Target: t);
            for (var i = suffixes.Count - 1; i >= 0; i--)
            {
                t = suffixes[i] == FunctionSuffix ? new CType(CTypeKind.Function, Target: t) : new CType(CTypeKind.Array, Target: t, Length: suffixes[i]);
            }
            return inner(t);
        }
        return (name, nameToken, Build);
    }

    private static bool IsAttribute(Token t) => t.Kind == TokenKind.Identifier && t.Text is "__attribute__" or "__attribute";

    private void ParseAttributes(out bool packed, out int align, out bool preserveAccessIndex, bool allowRecordOnly)
    {
        packed = false;
        align = 0;
        preserveAccessIndex = false;
        while (IsAttribute(Cur))
        {
            Next();
            Expect("(");
            Expect("(");
            while (!Cur.Is(")"))
            {
                if (Cur.Kind != TokenKind.Identifier) throw Error(SchemaDiagnosticIds.SyntaxError, "expected an attribute name but found " + Cur, Cur);
                var nameToken = Next();
                var name = nameToken.Text;
                if (name.StartsWith("__", StringComparison.Ordinal) && name.EndsWith("__", StringComparison.Ordinal) && name.Length > 4) name = name.Substring(2, name.Length - 4);
                switch (name)
                {
                    case "packed":
                        packed = true;
                        break;
                    case "aligned":
                        if (!Cur.Is("(")) throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: 'aligned' without an alignment (its value differs between models)", nameToken);
                        Next();
                        var valueToken = Cur;
                        var value = ParseExpression(0);
                        Expect(")");
                        if (value <= 0 || (value & (value - 1)) != 0 || value > 1 << 28)
                        {
                            Report(SchemaDiagnosticIds.SyntaxError, "requested alignment " + value.ToString(System.Globalization.CultureInfo.InvariantCulture) + " is not a positive power of 2", valueToken);
                        }
                        else
                        {
                            align = Math.Max(align, (int)value);
                        }
                        break;
                    case "preserve_access_index":
                        if (!allowRecordOnly) Report(SchemaDiagnosticIds.Unsupported, "unsupported construct: preserve_access_index applies to a struct or union only", nameToken);
                        preserveAccessIndex = true;
                        break;
                    default:
                        Report(SchemaDiagnosticIds.Unsupported, "unsupported construct: attribute '" + nameToken.Text + "'", nameToken);
                        if (Cur.Is("("))
                        {
                            var depth = 0;
                            do
                            {
                                if (Cur.Kind == TokenKind.End) throw Error(SchemaDiagnosticIds.SyntaxError, "unterminated attribute", Cur);
                                if (Cur.Is("(")) depth++;
                                else if (Cur.Is(")")) depth--;
                                Next();
                            }
                            while (depth > 0);
                        }
                        break;
                }
                if (Cur.Is(",")) Next();
                else if (!Cur.Is(")")) throw Error(SchemaDiagnosticIds.SyntaxError, "expected ',' or ')' in attribute but found " + Cur, Cur);
            }
            Expect(")");
            Expect(")");
        }
    }

    private static int Precedence(Token t) => t.Kind != TokenKind.Punct ? -1 : t.Text switch
    {
        "*" or "/" or "%" => 10,
        "+" or "-" => 9,
        "<<" or ">>" => 8,
        "&" => 5,
        "^" => 4,
        "|" => 3,
        _ => -1,
    };

    private long ParseExpression(int minPrecedence)
    {
        var left = ParseUnary();
        while (true)
        {
            var op = Cur;
            var prec = Precedence(op);
            if (prec < 0 || prec < minPrecedence) return left;
            Next();
            var right = ParseExpression(prec + 1);
            left = op.Text switch
            {
                "/" or "%" when right == 0 => throw Error(SchemaDiagnosticIds.SyntaxError, "division by zero in a constant expression", op),
                "/" or "%" when left == long.MinValue && right == -1 => throw Overflow(op),
                "*" => Checked(left, right, '*', op),
                "/" => left / right,
                "%" => left % right,
                "+" => Checked(left, right, '+', op),
                "-" => Checked(left, right, '-', op),
                "<<" => right is >= 0 and < 64 ? left << (int)right : throw Error(SchemaDiagnosticIds.SyntaxError, "shift count out of range", op),
                ">>" => right is >= 0 and < 64 ? left >> (int)right : throw Error(SchemaDiagnosticIds.SyntaxError, "shift count out of range", op),
                "&" => left & right,
                "^" => left ^ right,
                _ => left | right,
            };
        }
    }

    private ParseError Overflow(Token at) =>
        Error(SchemaDiagnosticIds.SyntaxError, "integer overflow in a constant expression (values are 64-bit signed)", at);

    private long Checked(long left, long right, char op, Token at)
    {
        try
        {
            return op switch
            {
                '*' => checked(left * right),
                '+' => checked(left + right),
                _ => checked(left - right),
            };
        }
        catch (OverflowException)
        {
            throw Overflow(at);
        }
    }

    private long ParseUnary()
    {
        Enter();
        try
        {
            return ParseUnaryInner();
        }
        finally
        {
            _depth--;
        }
    }

    private long ParseUnaryInner()
    {
        var t = Cur;
        if (t.Is("-"))
        {
            Next();
            var operand = ParseUnary();
            if (operand == long.MinValue) throw Overflow(t);
            return -operand;
        }
        if (t.Is("+"))
        {
            Next();
            return ParseUnary();
        }
        if (t.Is("~"))
        {
            Next();
            return ~ParseUnary();
        }
        if (t.Is("!"))
        {
            Next();
            return ParseUnary() == 0 ? 1 : 0;
        }
        if (t.Is("("))
        {
            Next();
            var v = ParseExpression(0);
            Expect(")");
            return v;
        }
        if (t.Kind == TokenKind.Number)
        {
            Next();
            return unchecked((long)t.Value);
        }
        if (t.Kind == TokenKind.Identifier)
        {
            if (t.Text == "sizeof" || t.Text == "_Alignof") throw Error(SchemaDiagnosticIds.Unsupported, "unsupported construct: '" + t.Text + "' in a constant expression (its value differs between models)", t);
            if (_constants.TryGetValue(t.Text, out var value))
            {
                Next();
                return value;
            }
            throw Error(SchemaDiagnosticIds.SyntaxError, "'" + t.Text + "' is not a constant defined earlier in this file", t);
        }
        throw Error(SchemaDiagnosticIds.SyntaxError, "expected a constant expression but found " + t, t);
    }
}
