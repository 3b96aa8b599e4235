using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace KvmTyped.Generators.Schema;

/// <summary>A declared member, as the kernel check needs it: its type descriptor under each data model (the grammar of
/// <see cref="KernelDigest"/>), its bitfield width (0 when not one) and, for a complete struct, its computed bit offsets.</summary>
internal sealed record KernelCheckMember(string Name, bool Optional, int BitWidth, string Type32, string Type64, long BitOffset32, long BitOffset64, SourcePos Pos);

/// <summary>A declared struct or union, as the kernel check needs it. Arch is its schema group (null: common, checked
/// against every kernel). Sizes and member offsets are meaningful for complete structs only.</summary>
internal sealed record KernelCheckStruct(string Name, bool IsUnion, bool Relocated, bool Optional, string? Arch, long Size32, long Size64,
    EquatableArray<KernelCheckMember> Members, SourcePos Pos);

/// <summary>Everything a project declares that the kernel check compares with each target kernel; equatable, so an
/// edit that leaves every declaration as it was leaves the check cached.</summary>
internal sealed record KernelCheckModel(EquatableArray<KernelCheckStruct> Structs)
{
    public static readonly KernelCheckModel Empty = new(EquatableArray<KernelCheckStruct>.Empty);
}

/// <summary>What checking against one kernel found. Findings are reported as they are. A type mismatch of an optional
/// member of a struct that is no flavor is held back in OptionalMismatches: that kernel has something else of the name,
/// which relocation takes as absent, and it is reported only when no target kernel has the member as declared (none
/// lists its position in OptionalFits). Optional members of flavors are variants by design and never held to that.</summary>
internal sealed record KernelFindings(EquatableArray<SchemaDiagnostic> Findings, EquatableArray<SchemaDiagnostic> OptionalMismatches, EquatableArray<string> OptionalFits)
{
    public static readonly KernelFindings None = new(EquatableArray<SchemaDiagnostic>.Empty, EquatableArray<SchemaDiagnostic>.Empty, EquatableArray<string>.Empty);
}

/// <summary>Compares declared structs with a target kernel's digest: relocated (preserve_access_index) members and
/// structs the kernel lacks (KVMT0100, KVMT0101) unless declared optional; member types the relocation would refuse or
/// that would read different values (KVMT0102); complete structs whose layout is not the kernel's (KVMT0103).
/// Flavors (<c>name___suffix</c>) are compared with the kernel struct named before the <c>___</c>, as libbpf relocates
/// them; a struct of a per-architecture group only with kernels of that architecture.</summary>
internal static class KernelChecker
{
    /// <summary>The check model of one resolved schema group: its own structs (<paramref name="arch"/>), valid and named.</summary>
    public static IEnumerable<KernelCheckStruct> Describe(ResolvedSchema schema, string? arch)
    {
        SchemaLayout? ilp32 = null, lp64 = null;
        foreach (var s in schema.Structs)
        {
            if (schema.Broken.Contains(s.Name) || s.Arch != arch || s.IsAnonymous) continue;
            StructLayout? l32 = null, l64 = null;
            if (!s.PreserveAccessIndex)
            {
                l32 = (ilp32 ??= new SchemaLayout(schema, lp64: false)).Get(s.Name);
                l64 = (lp64 ??= new SchemaLayout(schema, lp64: true)).Get(s.Name);
                if (l32 is null || l64 is null) continue;
            }
            var named = new List<FieldDef>();
            Flatten(s, schema, named, 0);
            var members = new List<KernelCheckMember>(named.Count);
            for (var i = 0; i < named.Count; i++)
            {
                var f = named[i];
                members.Add(new KernelCheckMember(f.Name!, f.Optional, f.IsBitfield ? f.BitWidth : 0, Descriptor(f.Type, schema, false, 0), Descriptor(f.Type, schema, true, 0),
                    l32?.Fields[i].BitOffset ?? 0, l64?.Fields[i].BitOffset ?? 0, f.Pos));
            }
            yield return new KernelCheckStruct(s.Name, s.IsUnion, s.PreserveAccessIndex, s.Optional, s.Arch, l32?.Size ?? 0, l64?.Size ?? 0, members.ToEquatableArray(), s.Pos);
        }
    }

    private static void Flatten(StructDef s, ResolvedSchema schema, List<FieldDef> named, int depth)
    {
        foreach (var f in s.Fields)
        {
            if (f.Name is not null)
            {
                named.Add(f);
            }
            else if (!f.IsBitfield && f.Type.IsRecord && depth < SchemaLimits.MaxAnonymousNesting && schema.StructsByName.TryGetValue(f.Type.Name, out var inner))
            {
                Flatten(inner, schema, named, depth + 1);
            }
        }
    }

    /// <summary>A declared type in the digest's type grammar (a flexible array is <c>[]</c>).</summary>
    public static string Descriptor(CType t, ResolvedSchema schema, bool lp64, int depth)
    {
        if (depth > 16) return "?";
        switch (t.Kind)
        {
            case CTypeKind.Bool: return "b1";
            case CTypeKind.Char: return "c1";
            case CTypeKind.Float: return "f4";
            case CTypeKind.Double: return "f8";
            case CTypeKind.Void: return "v";
            case CTypeKind.Function: return "F";
            case CTypeKind.Struct: return "S" + t.Name;
            case CTypeKind.Union: return "U" + t.Name;
            case CTypeKind.Pointer: return "*" + (t.Target is null ? "v" : Descriptor(t.Target, schema, lp64, depth + 1));
            case CTypeKind.Array:
                return "[" + (t.Length < 0 ? string.Empty : t.Length.ToString(CultureInfo.InvariantCulture)) + "]" + (t.Target is null ? "?" : Descriptor(t.Target, schema, lp64, depth + 1));
            case CTypeKind.Enum:
                var under = schema.EnumsByName.TryGetValue(t.Name, out var e) ? e.Underlying : CTypeKind.UInt;
                return (under is CTypeKind.Int or CTypeKind.LongLong ? "E" : "e") + (under is CTypeKind.LongLong or CTypeKind.ULongLong ? "8" : "4");
            case CTypeKind.SChar or CTypeKind.Short or CTypeKind.Int or CTypeKind.Long or CTypeKind.LongLong:
                return "s" + SchemaLayout.ScalarSize(t.Kind, lp64).ToString(CultureInfo.InvariantCulture);
            case CTypeKind.UChar or CTypeKind.UShort or CTypeKind.UInt or CTypeKind.ULong or CTypeKind.ULongLong:
                return "u" + SchemaLayout.ScalarSize(t.Kind, lp64).ToString(CultureInfo.InvariantCulture);
            default:
                return "?";
        }
    }

    /// <summary>Whether structs of a schema group (<paramref name="arch"/>, null for the common one) are checked
    /// against <paramref name="kernel"/>.</summary>
    public static bool Applies(string? arch, KernelDigest kernel) => arch is null || KernelArch.Normalize(arch) == kernel.Machine;

    /// <summary>The name libbpf relocates a struct against: everything before a <c>___</c> flavor suffix.</summary>
    public static string EssentialName(string name)
    {
        var at = name.IndexOf("___", StringComparison.Ordinal);
        return at > 0 ? name.Substring(0, at) : name;
    }

    /// <summary>What <paramref name="kernel"/> says of the declarations, in declaration order.</summary>
    public static KernelFindings Check(KernelCheckModel model, KernelDigest kernel)
    {
        var result = new Accumulator();
        kernel.Preload(model.Structs.Where(s => Applies(s.Arch, kernel)).Select(s => s.Relocated ? EssentialName(s.Name) : s.Name));
        foreach (var s in model.Structs)
        {
            if (!Applies(s.Arch, kernel)) continue;
            if (s.Relocated) CheckRelocated(s, kernel, result);
            else CheckComplete(s, kernel, result);
        }
        return new KernelFindings(result.Findings.ToEquatableArray(), result.OptionalMismatches.ToEquatableArray(), result.OptionalFits.ToEquatableArray());
    }

    /// <summary>The findings to report for a project's kernels: each kernel's findings in order, then the type mismatches
    /// of optional members that no kernel has as declared; each with the index of its kernel.</summary>
    public static List<(int Kernel, SchemaDiagnostic Finding)> Report(IReadOnlyList<KernelFindings> kernels)
    {
        var result = new List<(int, SchemaDiagnostic)>();
        var fits = new HashSet<string>(StringComparer.Ordinal);
        for (var k = 0; k < kernels.Count; k++)
        {
            foreach (var d in kernels[k].Findings) result.Add((k, d));
            foreach (var f in kernels[k].OptionalFits) fits.Add(f);
        }
        for (var k = 0; k < kernels.Count; k++)
        {
            foreach (var d in kernels[k].OptionalMismatches)
            {
                if (!fits.Contains(d.Pos.ToString())) result.Add((k, d with { Message = d.Message + "; it is optional, but no target kernel has it as declared" }));
            }
        }
        return result;
    }

    private sealed class Accumulator
    {
        public List<SchemaDiagnostic> Findings { get; } = new();

        public List<SchemaDiagnostic> OptionalMismatches { get; } = new();

        public List<string> OptionalFits { get; } = new();
    }

    private static string Kind(bool isUnion) => isUnion ? "union" : "struct";

    private static string Hint(SourcePos pos, string what) =>
        pos.File.EndsWith(".cs", StringComparison.OrdinalIgnoreCase)
            ? " (mark " + what + " [KernelOptional] if only some target kernels have it)"
            : " (mark " + what + " " + SchemaParser.OptionalMarker + " if only some target kernels have it)";

    private static void CheckRelocated(KernelCheckStruct s, KernelDigest kernel, Accumulator result)
    {
        var target = EssentialName(s.Name);
        var shown = target == s.Name ? s.Name : s.Name + " (" + Kind(s.IsUnion) + " " + target + ")";
        var k = kernel.Find(target, s.IsUnion);
        if (k is null)
        {
            if (s.Optional) return;
            var other = kernel.FindOtherKind(target, s.IsUnion);
            var message = other is not null
                ? Kind(s.IsUnion) + " " + shown + " is declared a " + Kind(s.IsUnion) + ", but in " + kernel.Release + " " + target + " is a " + Kind(!s.IsUnion)
                : Kind(s.IsUnion) + " " + shown + " does not exist in " + kernel.Release + Suggest(target, s.IsUnion ? kernel.UnionNames : kernel.StructNames, "it has") + Hint(s.Pos, "the struct");
            result.Findings.Add(new SchemaDiagnostic(other is not null ? KernelDiagnosticIds.TypeMismatch : KernelDiagnosticIds.StructMissing, message, s.Pos));
            return;
        }
        foreach (var m in s.Members)
        {
            var km = k.Find(m.Name);
            if (km is null)
            {
                if (m.Optional) continue;
                result.Findings.Add(new SchemaDiagnostic(KernelDiagnosticIds.MemberMissing,
                    shown + "." + m.Name + " does not exist in " + kernel.Release + Suggest(m.Name, k.Members.Select(x => x.Name), "it has") + Hint(m.Pos, "the member"), m.Pos));
                continue;
            }
            var mismatch = TypeMismatch(shown, m, km, kernel);
            if (!m.Optional)
            {
                if (mismatch is not null) result.Findings.Add(mismatch);
            }
            else if (mismatch is null)
            {
                result.OptionalFits.Add(m.Pos.ToString());
            }
            else if (target == s.Name)
            {
                result.OptionalMismatches.Add(mismatch);
            }
        }
    }

    private static void CheckComplete(KernelCheckStruct s, KernelDigest kernel, Accumulator result)
    {
        // A complete struct the kernel does not name is the project's own (a user-space ABI, a private layout).
        var k = kernel.Find(s.Name, s.IsUnion);
        if (k is null) return;
        var lp64 = kernel.Lp64;
        var differences = new List<string>();
        var size = lp64 ? s.Size64 : s.Size32;
        if (size != k.Size) differences.Add("size " + N(size) + ", the kernel's " + N(k.Size));
        foreach (var m in s.Members)
        {
            var km = k.Find(m.Name);
            var bitOffset = lp64 ? m.BitOffset64 : m.BitOffset32;
            if (km is null)
            {
                differences.Add(m.Name + " (at " + Offset(bitOffset) + ") is not in the kernel's");
                continue;
            }
            if (km.BitOffset != bitOffset) differences.Add(m.Name + " at " + Offset(bitOffset) + ", the kernel's at " + Offset(km.BitOffset));
            else if (m.BitWidth > 0 && km.BitSize > 0 && m.BitWidth != km.BitSize) differences.Add(m.Name + " is " + N(m.BitWidth) + " bits wide, the kernel's " + N(km.BitSize));
            if (TypeMismatch(s.Name, m, km, kernel) is { } mismatch) result.Findings.Add(mismatch);
        }
        if (differences.Count > 0)
        {
            result.Findings.Add(new SchemaDiagnostic(KernelDiagnosticIds.LayoutDiffers,
                Kind(s.IsUnion) + " " + s.Name + " is complete, but its layout (" + (lp64 ? "LP64" : "ILP32") + ") differs from " + kernel.Release + "'s: " + string.Join("; ", differences), s.Pos));
        }
    }

    private static string N(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Offset(long bits) => bits % 8 == 0 ? "offset " + N(bits / 8) : "bit " + N(bits);

    private static SchemaDiagnostic? TypeMismatch(string shown, KernelCheckMember m, KernelMember km, KernelDigest kernel)
    {
        var declared = TypeDesc.Parse(kernel.Lp64 ? m.Type64 : m.Type32);
        var actual = TypeDesc.Parse(km.Type);
        string? why;
        if (km.BitSize > 0 && m.BitWidth == 0)
        {
            why = "the kernel's member is a bitfield (: " + N(km.BitSize) + "); declare it as one";
        }
        else if (m.BitWidth > 0)
        {
            why = !actual.IsIntegral ? "a bitfield needs an integer or enum member" : Signedness(declared, actual);
        }
        else
        {
            why = Compatible(declared, actual, 0);
        }
        if (why is null) return null;
        var declaredText = declared.Describe() + (m.BitWidth > 0 ? " : " + N(m.BitWidth) : string.Empty);
        var kernelText = actual.Describe() + (km.BitSize > 0 ? " : " + N(km.BitSize) : string.Empty);
        return new SchemaDiagnostic(KernelDiagnosticIds.TypeMismatch,
            shown + "." + m.Name + " is declared " + declaredText + ", but in " + kernel.Release + " it is " + kernelText + ": " + why, m.Pos);
    }

    /// <summary>Null when a value of the kernel's type reads correctly through the declared one; otherwise why not.
    /// Mirrors what the run-time relocation refuses (kinds, sizes, array lengths, struct tags), and adds signedness,
    /// which it tolerates but which changes the values read: plain char (signed on x86, unsigned on aarch64) and enums
    /// match either.</summary>
    private static string? Compatible(TypeDesc declared, TypeDesc actual, int depth)
    {
        switch (declared.Kind)
        {
            case 's' or 'u' or 'c' or 'e' or 'E':
                if (!actual.IsIntegral) return actual.Kind == '*' ? "an integer cannot hold a pointer" : "an integer needs an integer or enum";
                if (actual.Size != declared.Size) return "the sizes differ (" + N(declared.Size) + " bytes declared, " + N(actual.Size) + " in the kernel)";
                return Signedness(declared, actual);
            case 'b':
                return actual.IsIntegral && actual.Size == 1 ? null : "_Bool needs a 1-byte integer";
            case 'f':
                return actual.Kind == 'f' && actual.Size == declared.Size ? null : "a float needs a float of the same size";
            case '*':
                if (actual.Kind != '*') return actual.IsIntegral ? "a pointer cannot be read from an integer" : "a pointer needs a pointer";
                if (declared.Inner is { IsRecord: true } dp && dp.Name.Length > 0 && actual.Inner is { IsRecord: true } kp && kp.Name.Length > 0
                    && (dp.Kind != kp.Kind || EssentialName(dp.Name) != EssentialName(kp.Name)))
                {
                    return "it points to " + kp.Describe() + ", not " + dp.Describe();
                }
                return null;
            case '[':
                if (actual.Kind != '[') return "an array needs an array";
                if (declared.Length >= 0 && declared.Length != actual.Length) return "the lengths differ (" + N(declared.Length) + " declared, " + N(actual.Length) + " in the kernel)";
                if (declared.Inner is null || actual.Inner is null || depth > 16) return null;
                var inner = Compatible(declared.Inner, actual.Inner, depth + 1);
                return inner is null ? null : "elements: " + inner;
            case 'S' or 'U':
                if (actual.Kind != declared.Kind) return "a " + (declared.Kind == 'S' ? "struct" : "union") + " needs a " + (declared.Kind == 'S' ? "struct" : "union");
                return actual.Name.Length == 0 || EssentialName(actual.Name) == EssentialName(declared.Name) ? null : "the tags differ";
            default:
                return null;
        }
    }

    private static string? Signedness(TypeDesc declared, TypeDesc actual)
    {
        if (declared.Kind is 's' or 'u' && actual.Kind is 's' or 'u' && declared.Kind != actual.Kind)
        {
            return "the signedness differs, so values past the sign bit would read differently";
        }
        return null;
    }

    /// <summary>"; it has a, b or c" with the names closest to <paramref name="name"/>, or nothing when none is close.</summary>
    internal static string Suggest(string name, IEnumerable<string> candidates, string lead)
    {
        var bare = name.Trim('_');
        var scored = new List<(int Score, string Name)>();
        var limit = name.Length <= 4 ? 1 : Math.Max(2, name.Length / 3);
        foreach (var c in candidates)
        {
            if (c == name) continue;
            int score;
            if (c.Trim('_') == bare || string.Equals(c, name, StringComparison.OrdinalIgnoreCase)) score = 0;
            else if (Math.Abs(c.Length - name.Length) > limit) continue;
            else score = Distance(name, c, limit);
            if (score <= limit) scored.Add((score, c));
        }
        if (scored.Count == 0) return string.Empty;
        if (scored.Any(x => x.Score == 0)) scored.RemoveAll(x => x.Score > 0);
        var best = scored.OrderBy(x => x.Score).ThenBy(x => x.Name, StringComparer.Ordinal).Take(3).Select(x => x.Name).ToList();
        return "; " + lead + " " + (best.Count == 1 ? best[0] : string.Join(", ", best.Take(best.Count - 1)) + " and " + best[best.Count - 1]);
    }

    /// <summary>Levenshtein distance, giving up (returning limit + 1) once it must exceed <paramref name="limit"/>.</summary>
    private static int Distance(string a, string b, int limit)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            var rowMin = current[0];
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
                rowMin = Math.Min(rowMin, current[j]);
            }
            if (rowMin > limit) return limit + 1;
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>A parsed type descriptor.</summary>
    private sealed class TypeDesc
    {
        private TypeDesc(char kind, long size, string name, long length, TypeDesc? inner)
        {
            Kind = kind;
            Size = size;
            Name = name;
            Length = length;
            Inner = inner;
        }

        public char Kind { get; }

        public long Size { get; }

        public string Name { get; }

        /// <summary>An array's length; -1 for a declared flexible array (matches any).</summary>
        public long Length { get; }

        public TypeDesc? Inner { get; }

        public bool IsIntegral => Kind is 's' or 'u' or 'c' or 'b' or 'e' or 'E';

        public bool IsRecord => Kind is 'S' or 'U';

        public static TypeDesc Parse(string text)
        {
            var at = 0;
            return Parse(text, ref at, 0);
        }

        private static TypeDesc Parse(string text, ref int at, int depth)
        {
            if (at >= text.Length || depth > 32) return new TypeDesc('?', 0, string.Empty, 0, null);
            var kind = text[at++];
            switch (kind)
            {
                case 's' or 'u' or 'c' or 'b' or 'f' or 'e' or 'E':
                    return new TypeDesc(kind, Number(text, ref at), string.Empty, 0, null);
                case '*':
                    return new TypeDesc('*', 0, string.Empty, 0, Parse(text, ref at, depth + 1));
                case '[':
                    var close = text.IndexOf(']', at);
                    if (close < 0) return new TypeDesc('?', 0, string.Empty, 0, null);
                    var length = close == at ? -1 : long.TryParse(text.Substring(at, close - at), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;
                    at = close + 1;
                    return new TypeDesc('[', 0, string.Empty, length, Parse(text, ref at, depth + 1));
                case 'S' or 'U':
                    var name = text.Substring(at);
                    at = text.Length;
                    return new TypeDesc(kind, 0, name, 0, null);
                default:
                    return new TypeDesc(kind, 0, string.Empty, 0, null);
            }
        }

        private static long Number(string text, ref int at)
        {
            long v = 0;
            while (at < text.Length && text[at] >= '0' && text[at] <= '9') v = v * 10 + (text[at++] - '0');
            return v;
        }

        public string Describe() => Kind switch
        {
            's' => "signed " + N(Size) + "-byte int",
            'u' => "unsigned " + N(Size) + "-byte int",
            'c' => "char",
            'b' => "_Bool",
            'f' => N(Size) + "-byte float",
            'e' or 'E' => N(Size) + "-byte enum",
            '*' => Inner is { IsRecord: true } r ? "pointer to " + r.Describe() : "pointer",
            '[' => "array[" + (Length < 0 ? string.Empty : N(Length)) + "] of " + (Inner?.Describe() ?? "?"),
            'S' => "struct " + (Name.Length == 0 ? "(anonymous)" : Name),
            'U' => "union " + (Name.Length == 0 ? "(anonymous)" : Name),
            'v' => "void",
            'F' => "function",
            _ => "a type of another kind",
        };
    }
}
