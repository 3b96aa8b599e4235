using System;
using System.Collections.Generic;
using System.Globalization;

namespace KvmTyped.Generators.Schema;

/// <summary>A struct or union as a target kernel's BTF has it: its size and its members with anonymous members
/// flattened in (offsets from the start of the struct), each with a type descriptor (see <see cref="KernelDigest"/>).</summary>
internal sealed class KernelStruct
{
    public KernelStruct(string name, bool isUnion, long size, List<KernelMember> members)
    {
        Name = name;
        IsUnion = isUnion;
        Size = size;
        Members = members;
    }

    public string Name { get; }

    public bool IsUnion { get; }

    public long Size { get; }

    public List<KernelMember> Members { get; }

    public KernelMember? Find(string name)
    {
        foreach (var m in Members)
        {
            if (m.Name == name) return m;
        }
        return null;
    }
}

/// <summary>A member of a <see cref="KernelStruct"/>: bit offset from the start of the struct, bitfield width (0 when not
/// a bitfield) and type descriptor.</summary>
internal sealed record KernelMember(string Name, long BitOffset, int BitSize, string Type);

/// <summary>The digest of one target kernel's BTF, as the KvmTyped build task writes it into obj/ (Roslyn hands a
/// generator additional files as text and forbids file I/O, so the BTF itself cannot be read here). Line-oriented
/// UTF-8 text:
/// <code>
/// kvmtyped-kernel-digest 1
/// release 6.1.0-56-amd64
/// machine x86_64
/// pointer 8
/// source vmlinux-6.1.0-56-amd64.gz
/// hash 3f2a…            (of the BTF blob and the digest format; what caching compares)
/// stamp …               (the kernel file's length and time, for the task's up-to-date check)
/// ---
/// S task_struct 9792 thread_info@0:Sthread_info __state@192:u4 …
/// U name size member…   (a union)
/// TS atomic_t 4 counter@0:s4   (a typedef of an anonymous struct; TU for a union)
/// E pid_type 4 u        (a named enum: size and signedness)
/// </code>
/// Each member is <c>name@bitoffset:type</c>, or <c>name@bitoffset/bits:type</c> for a bitfield. Types, with typedefs
/// and qualifiers resolved: <c>s</c>/<c>u</c> + size (signed/unsigned integer; a kernel's plain char is written with the
/// signedness its architecture gives it), <c>b1</c> (_Bool), <c>f</c> + size, <c>e</c>/<c>E</c> + size (unsigned/signed enum),
/// <c>*</c> + pointee, <c>[N]</c> + element (N = 0 for a flexible array; a declared one is <c>[]</c>), <c>S</c>/<c>U</c> +
/// tag (empty when anonymous), <c>v</c> (void), <c>F</c> (function), <c>?</c> (other). Declared types use the same
/// grammar, plus <c>c1</c> for a plain char, which matches a char of either signedness. Only the lines of structs a
/// project declares are ever parsed: loading a digest indexes its lines by name and keeps the text.</summary>
internal sealed class KernelDigest : IEquatable<KernelDigest>
{
    /// <summary>The first line of every digest; the number is the format version.</summary>
    public const string Magic = "kvmtyped-kernel-digest 1";

    /// <summary>The most lines (types) a digest may have; a kernel has some tens of thousands.</summary>
    public const int MaxLines = 4_000_000;

    private readonly string _text;
    private readonly Dictionary<string, int> _structs;
    private readonly Dictionary<string, int> _unions;
    private readonly Dictionary<string, int> _typedefs;

    private KernelDigest(string path, string text, string release, string machine, int pointerSize, string hash, string source,
        Dictionary<string, int> structs, Dictionary<string, int> unions, Dictionary<string, int> typedefs)
    {
        Path = path;
        _text = text;
        Release = release;
        Machine = machine;
        PointerSize = pointerSize;
        Hash = hash;
        Source = source;
        _structs = structs;
        _unions = unions;
        _typedefs = typedefs;
    }

    /// <summary>The digest file's path (only for messages; not part of equality).</summary>
    public string Path { get; }

    /// <summary>The kernel's release, as messages name it ("6.1.0-56-amd64").</summary>
    public string Release { get; }

    /// <summary>The kernel's machine, normalized by <see cref="KernelArch.Normalize"/> ("x86_64", "i386", "aarch64").</summary>
    public string Machine { get; }

    /// <summary>4 (ILP32) or 8 (LP64).</summary>
    public int PointerSize { get; }

    /// <summary>Identifies the content: equal hashes, equal digests.</summary>
    public string Hash { get; }

    /// <summary>The kernel file the digest was made from.</summary>
    public string Source { get; }

    public bool Lp64 => PointerSize == 8;

    /// <summary>Every struct and union name, for suggestions.</summary>
    public IEnumerable<string> StructNames => _structs.Keys;

    public IEnumerable<string> UnionNames => _unions.Keys;

    /// <summary>Reads a digest. Throws <see cref="FormatException"/> naming the line when it is not one.</summary>
    public static KernelDigest Parse(string path, string text)
    {
        string? release = null, machine = null, hash = null, source = null;
        var pointer = 0;
        var at = 0;
        var lineNo = 0;
        string NextLine()
        {
            var end = text.IndexOf('\n', at);
            if (end < 0) end = text.Length;
            var line = text.Substring(at, end - at).TrimEnd('\r');
            at = Math.Min(text.Length, end + 1);
            lineNo++;
            return line;
        }
        FormatException Bad(string what) => new(path + ":" + lineNo.ToString(CultureInfo.InvariantCulture) + ": " + what);

        if (NextLine() != Magic) throw Bad("not a kernel digest of this version (expected '" + Magic + "' on the first line)");
        while (true)
        {
            if (at >= text.Length) throw Bad("the header does not end with '---'");
            var line = NextLine();
            if (line == "---") break;
            var space = line.IndexOf(' ');
            var key = space < 0 ? line : line.Substring(0, space);
            var value = space < 0 ? string.Empty : line.Substring(space + 1).Trim();
            switch (key)
            {
                case "release": release = value; break;
                case "machine": machine = KernelArch.Normalize(value); break;
                case "source": source = value; break;
                case "hash": hash = value; break;
                case "pointer":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out pointer) || pointer is not (4 or 8))
                    {
                        throw Bad("pointer size '" + value + "' is not 4 or 8");
                    }
                    break;
            }
        }
        if (release is null || release.Length == 0) throw Bad("the header names no release");
        if (pointer == 0) throw Bad("the header gives no pointer size");
        var structs = new Dictionary<string, int>(StringComparer.Ordinal);
        var unions = new Dictionary<string, int>(StringComparer.Ordinal);
        var typedefs = new Dictionary<string, int>(StringComparer.Ordinal);
        var lines = 0;
        while (at < text.Length)
        {
            var start = at;
            var end = text.IndexOf('\n', at);
            if (end < 0) end = text.Length;
            at = end + 1;
            if (++lines > MaxLines) throw Bad("more than " + MaxLines.ToString(CultureInfo.InvariantCulture) + " lines");
            var kindEnd = text.IndexOf(' ', start, end - start);
            if (kindEnd < 0) continue;
            var nameEnd = text.IndexOf(' ', kindEnd + 1, end - kindEnd - 1);
            if (nameEnd < 0) nameEnd = end;
            var name = text.Substring(kindEnd + 1, nameEnd - kindEnd - 1).TrimEnd('\r');
            var kind = text.Substring(start, kindEnd - start);
            var into = kind switch
            {
                "S" => structs,
                "U" => unions,
                "TS" or "TU" => typedefs,
                _ => null,
            };
            if (into is not null && !into.ContainsKey(name)) into[name] = start;
        }
        return new KernelDigest(path, text, release, machine ?? "unknown", pointer, hash ?? ContentHash(text), source ?? path, structs, unions, typedefs);
    }

    /// <summary>FNV-1a over the text, for a digest whose header has no hash.</summary>
    private static string ContentHash(string text)
    {
        var h = 14695981039346656037UL;
        foreach (var c in text)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        return "fnv:" + h.ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>The kernel's struct (or union) of this tag; failing that, a typedef of that name naming an anonymous one.</summary>
    public KernelStruct? Find(string name, bool isUnion)
    {
        if ((isUnion ? _unions : _structs).TryGetValue(name, out var at)) return ParseLine(at);
        if (_typedefs.TryGetValue(name, out at)) return ParseLine(at);
        return null;
    }

    /// <summary>The struct or union of this tag of the other kind (a union declared as a struct, or the reverse).</summary>
    public KernelStruct? FindOtherKind(string name, bool isUnion) =>
        (isUnion ? _structs : _unions).TryGetValue(name, out var at) ? ParseLine(at) : null;

    private KernelStruct ParseLine(int start)
    {
        var end = _text.IndexOf('\n', start);
        if (end < 0) end = _text.Length;
        var parts = _text.Substring(start, end - start).TrimEnd('\r').Split(' ');
        FormatException Bad(string what) => new(Path + ": entry '" + (parts.Length > 1 ? parts[1] : "?") + "': " + what);
        if (parts.Length < 3) throw Bad("expected a kind, a name and a size");
        var isUnion = parts[0] is "U" or "TU";
        if (!long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var size)) throw Bad("size '" + parts[2] + "' is not a number");
        var members = new List<KernelMember>(parts.Length - 3);
        for (var i = 3; i < parts.Length; i++)
        {
            var p = parts[i];
            if (p.Length == 0) continue;
            var atSign = p.IndexOf('@');
            var colon = atSign < 0 ? -1 : p.IndexOf(':', atSign);
            if (atSign <= 0 || colon < 0) throw Bad("member '" + p + "' is not name@offset:type");
            var position = p.Substring(atSign + 1, colon - atSign - 1);
            var slash = position.IndexOf('/');
            var bits = 0;
            if (!long.TryParse(slash < 0 ? position : position.Substring(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out var bitOffset)
                || slash >= 0 && !int.TryParse(position.Substring(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out bits))
            {
                throw Bad("member '" + p + "' has no valid bit offset");
            }
            members.Add(new KernelMember(p.Substring(0, atSign), bitOffset, bits, p.Substring(colon + 1)));
        }
        return new KernelStruct(parts[1], isUnion, size, members);
    }

    public bool Equals(KernelDigest? other) =>
        other is not null && Hash == other.Hash && Release == other.Release && Machine == other.Machine && PointerSize == other.PointerSize && Source == other.Source;

    public override bool Equals(object? obj) => Equals(obj as KernelDigest);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Hash);
}

/// <summary>Machine names: the kernel's (uname -m, ELF e_machine) and a schema group's <c>KvmTypedArch</c> are compared
/// after this normalization, so X86_64, x86_64 and amd64 are one architecture, I386, i686 and x86 another, Arm64 and
/// aarch64 a third.</summary>
internal static class KernelArch
{
    public static string Normalize(string? machine)
    {
        var m = (machine ?? string.Empty).Trim().ToLowerInvariant().Replace('-', '_');
        return m switch
        {
            "x86_64" or "amd64" or "x64" => "x86_64",
            "i386" or "i486" or "i586" or "i686" or "x86" or "ia32" => "i386",
            "aarch64" or "arm64" => "aarch64",
            "" => "unknown",
            _ => m,
        };
    }
}
