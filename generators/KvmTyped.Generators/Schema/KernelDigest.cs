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

    /// <summary>The longest header read (it is a few hundred characters).</summary>
    public const int MaxHeader = 16 * 1024;

    /// <summary>The longest struct or union name looked for.</summary>
    public const int MaxName = 1024;

    private const int Block = 64 * 1024;

    private readonly DigestSource _text;
    private readonly int _body;
    private readonly Dictionary<string, int> _lines = new(StringComparer.Ordinal);
    private Dictionary<bool, List<string>>? _names;

    private KernelDigest(string path, DigestSource text, int body, string release, string machine, int pointerSize, string hash, string source)
    {
        Path = path;
        _text = text;
        _body = body;
        Release = release;
        Machine = machine;
        PointerSize = pointerSize;
        Hash = hash;
        Source = source;
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

    /// <summary>Every struct name, for suggestions (read on first use: only a finding needs them).</summary>
    public IEnumerable<string> StructNames => Names()[false];

    /// <summary>Every union name, for suggestions.</summary>
    public IEnumerable<string> UnionNames => Names()[true];

    /// <summary>Reads a digest held in a string.</summary>
    public static KernelDigest Parse(string path, string text) => Parse(path, new StringSource(text));

    /// <summary>Reads a digest's header; its lines are found when asked for (<see cref="Preload"/>, <see cref="Find"/>).
    /// Throws <see cref="FormatException"/> naming the line when it is not a digest.</summary>
    public static KernelDigest Parse(string path, DigestSource text)
    {
        var head = new char[Math.Min(text.Length, MaxHeader)];
        text.CopyTo(0, head, 0, head.Length);
        var header = new string(head);
        string? release = null, machine = null, hash = null, source = null;
        var pointer = 0;
        var at = 0;
        var lineNo = 0;
        string? NextLine()
        {
            var end = header.IndexOf('\n', at);
            if (end < 0) return null;
            var line = header.Substring(at, end - at).TrimEnd('\r');
            at = end + 1;
            lineNo++;
            return line;
        }
        FormatException Bad(string what) => new(path + ":" + lineNo.ToString(CultureInfo.InvariantCulture) + ": " + what);

        if (NextLine() != Magic) throw Bad("not a kernel digest of this version (expected '" + Magic + "' on the first line)");
        while (true)
        {
            var line = NextLine();
            if (line is null) throw Bad("the header does not end with '---'");
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
        return new KernelDigest(path, text, at, release, machine ?? "unknown", pointer, hash ?? ContentHash(text), source ?? path);
    }

    /// <summary>FNV-1a over the text, for a digest whose header has no hash.</summary>
    private static string ContentHash(DigestSource text)
    {
        var h = 14695981039346656037UL;
        var buffer = new char[Block];
        for (var at = 0; at < text.Length; at += Block)
        {
            var n = Math.Min(Block, text.Length - at);
            text.CopyTo(at, buffer, 0, n);
            for (var i = 0; i < n; i++) h = (h ^ buffer[i]) * 1099511628211UL;
        }
        return "fnv:" + h.ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>Finds the lines of these structs and unions (each tag as a struct, a union, and a typedef of an anonymous
    /// one) in one pass over the text, so the lookups that follow cost nothing. One pass, not an index: a project looks
    /// up some tens of names, and indexing a kernel's tens of thousands of lines on every compilation would cost more.</summary>
    public void Preload(IEnumerable<string> names)
    {
        lock (_lines) PreloadLocked(names);
    }

    private void PreloadLocked(IEnumerable<string> names)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in names)
        {
            if (n.Length == 0 || n.Length > MaxName) continue;
            foreach (var kind in new[] { "S ", "U ", "TS ", "TU " })
            {
                if (!_lines.ContainsKey(kind + n)) wanted.Add(kind + n);
            }
        }
        if (wanted.Count == 0) return;
        foreach (var key in wanted) _lines[key] = -1;
        Scan((key, at) =>
        {
            if (wanted.Contains(key) && _lines[key] < 0) _lines[key] = at;
        }, wanted);
    }

    /// <summary>Calls <paramref name="found"/> with "KIND NAME" and the line's start for each struct, union and typedef
    /// line whose key is in <paramref name="wanted"/> (every one when null).</summary>
    private void Scan(Action<string, int> found, HashSet<string>? wanted)
    {
        var longest = 0;
        var lengths = new HashSet<int>();
        if (wanted is not null)
        {
            foreach (var w in wanted)
            {
                longest = Math.Max(longest, w.Length);
                lengths.Add(w.Length);
            }
        }
        else
        {
            longest = MaxName + 3;
        }
        var buffer = new char[Block + longest + 2];
        var pos = _body;
        var length = _text.Length;
        var lines = 0;
        while (pos < length)
        {
            // pos is at a line start: copy a block from it and look at each line starting inside the block.
            var n = Math.Min(buffer.Length, length - pos);
            _text.CopyTo(pos, buffer, 0, n);
            var i = 0;
            while (i < n)
            {
                if (++lines > MaxLines) return;
                var complete = n - i > longest + 1 || pos + n == length;
                if (!complete && i > 0) break;
                var keyEnd = KeyEnd(buffer, i, Math.Min(n, i + longest + 1));
                if (keyEnd > i && (wanted is null || lengths.Contains(keyEnd - i)))
                {
                    var key = new string(buffer, i, keyEnd - i);
                    if (wanted is null || wanted.Contains(key)) found(key, pos + i);
                }
                var newline = Array.IndexOf(buffer, '\n', i, n - i);
                if (newline >= 0)
                {
                    i = newline + 1;
                    continue;
                }
                // The line runs past this block: skip to its end.
                var next = SkipLine(pos + n);
                i = n;
                pos = next - n;
                break;
            }
            pos += i;
        }
    }

    /// <summary>The end of "KIND NAME" at the start of a line in buffer[start, limit), or start when the line is no
    /// struct, union or typedef line.</summary>
    private static int KeyEnd(char[] buffer, int start, int limit)
    {
        var i = start;
        if (i < limit && buffer[i] == 'T') i++;
        if (i >= limit || buffer[i] is not ('S' or 'U')) return start;
        i++;
        if (i >= limit || buffer[i] != ' ') return start;
        i++;
        while (i < limit && buffer[i] != ' ' && buffer[i] != '\n') i++;
        return i < limit ? i : start;
    }

    /// <summary>The start of the line after the one that runs through <paramref name="from"/>: read in chunks that
    /// double from 4 KiB, since most lines are short.</summary>
    private int SkipLine(int from)
    {
        var size = 4096;
        for (var at = from; at < _text.Length;)
        {
            var n = Math.Min(size, _text.Length - at);
            var buffer = new char[n];
            _text.CopyTo(at, buffer, 0, n);
            var newline = Array.IndexOf(buffer, '\n', 0, n);
            if (newline >= 0) return at + newline + 1;
            at += n;
            size = Math.Min(size * 2, Block);
        }
        return _text.Length;
    }

    private Dictionary<bool, List<string>> Names()
    {
        lock (_lines) return NamesLocked();
    }

    private Dictionary<bool, List<string>> NamesLocked()
    {
        if (_names is { } known) return known;
        var names = new Dictionary<bool, List<string>> { [false] = new(), [true] = new() };
        Scan((key, _) =>
        {
            if (key[0] != 'T') names[key[0] == 'U'].Add(key.Substring(2));
        }, null);
        return _names = names;
    }

    /// <summary>The kernel's struct (or union) of this tag; failing that, a typedef of that name naming an anonymous one.</summary>
    public KernelStruct? Find(string name, bool isUnion)
    {
        var at = Line(isUnion ? "U " : "S ", name);
        if (at < 0) at = Line(isUnion ? "TU " : "TS ", name);
        return at < 0 ? null : ParseLine(at);
    }

    /// <summary>The struct or union of this tag of the other kind (a union declared as a struct, or the reverse).</summary>
    public KernelStruct? FindOtherKind(string name, bool isUnion)
    {
        var at = Line(isUnion ? "S " : "U ", name);
        return at < 0 ? null : ParseLine(at);
    }

    /// <summary>Where the line of <paramref name="kind"/> <paramref name="name"/> starts, or -1.</summary>
    private int Line(string kind, string name)
    {
        lock (_lines)
        {
            if (!_lines.ContainsKey(kind + name)) PreloadLocked(new[] { name });
            return _lines.TryGetValue(kind + name, out var at) ? at : -1;
        }
    }

    private KernelStruct ParseLine(int start)
    {
        var end = SkipLine(start);
        var parts = _text.ToString(start, end - start).TrimEnd('\n', '\r').Split(' ');
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

/// <summary>The text of a digest, read in blocks: a string, or (in the generator) the compiler's text of the file, which
/// is not copied whole.</summary>
internal abstract class DigestSource
{
    public abstract int Length { get; }

    public abstract void CopyTo(int sourceIndex, char[] destination, int destinationIndex, int count);

    public abstract string ToString(int start, int length);
}

internal sealed class StringSource : DigestSource
{
    private readonly string _text;

    public StringSource(string text) => _text = text;

    public override int Length => _text.Length;

    public override void CopyTo(int sourceIndex, char[] destination, int destinationIndex, int count) => _text.CopyTo(sourceIndex, destination, destinationIndex, count);

    public override string ToString(int start, int length) => _text.Substring(start, length);
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
