using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace KvmTyped.Btf;

internal sealed partial class BtfTypes
{
    /// <summary>The direct members of a struct or union (through typedefs and qualifiers), in declaration order.
    /// Bitfields are reported the same way whether the blob marks them with the kind flag or, as older encoders
    /// did, with a narrow <see cref="BtfKind.Int"/> type.</summary>
    /// <exception cref="ArgumentException">The type is not a struct or union.</exception>
    public IReadOnlyList<BtfMember> GetMembers(int id)
    {
        id = Resolve(id);
        var t = Get(id);
        if (t.Kind is not (BtfKind.Struct or BtfKind.Union))
            throw new ArgumentException($"type id {id} is {t.Kind}, not a struct or union", nameof(id));
        int at = RecordStart(id, out var owner);
        var words = owner._words;
        var result = new BtfMember[t.Vlen];
        for (int i = 0; i < t.Vlen; i++)
        {
            int w = at + 3 + 3 * i;
            int type = (int)words[w + 1];
            long bitOffset;
            int bitfield;
            if (t.KindFlag)
            {
                bitOffset = words[w + 2] & 0xff_ffff;
                bitfield = (int)(words[w + 2] >> 24);
            }
            else
            {
                bitOffset = words[w + 2];
                bitfield = 0;
                int r = Resolve(type);
                if (KindOf(r) == BtfKind.Int && SizeOf(r) is long intSize)
                {
                    var enc = GetInt(r);
                    if (enc.Bits != intSize * 8 || enc.BitOffset != 0)
                    {
                        bitfield = enc.Bits;
                        bitOffset += enc.BitOffset;
                    }
                }
            }
            result[i] = new BtfMember(GetString(words[w]), type, bitOffset, bitfield);
        }
        return result;
    }

    /// <summary>The members of a struct or union with anonymous struct and union members flattened in, in
    /// declaration order; offsets count from the start of <paramref name="id"/>. Anonymous members of other
    /// types (unnamed padding bitfields) are left out.</summary>
    /// <exception cref="KvmFormatException">Anonymous members nest deeper than <see cref="MaxNesting"/>, or
    /// flattening yields, or has to look at, more than <see cref="MaxFlattenedFields"/> members (anonymous types
    /// shared many times over expand exponentially).</exception>
    public IReadOnlyList<BtfField> GetFlattenedMembers(int id)
    {
        var result = new List<BtfField>();
        int visited = 0;
        Flatten(Resolve(id), 0, result, 0, id, ref visited);
        return result;
    }

    private void Flatten(int id, long baseBits, List<BtfField> into, int depth, int outer, ref int visited)
    {
        if (depth > MaxNesting)
            throw Fail(outer, $"anonymous members nest deeper than {MaxNesting} (a cycle?)");
        foreach (var m in GetMembers(id))
        {
            if (++visited > MaxFlattenedFields)
                throw Fail(outer, $"expands to more than {MaxFlattenedFields} members (anonymous members shared over and over?)");
            if (m.Name.Length == 0)
            {
                int r = Resolve(m.TypeId);
                if (KindOf(r) is BtfKind.Struct or BtfKind.Union)
                    Flatten(r, baseBits + m.BitOffset, into, depth + 1, outer, ref visited);
                continue;
            }
            if (into.Count >= MaxFlattenedFields)
                throw Fail(outer, $"flattening yields more than {MaxFlattenedFields} fields");
            if (!TrySizeOf(m.TypeId, out long size, out string? why))
                throw Fail(id, $"member {m.Name}: {why}");
            into.Add(new BtfField(m.Name, m.TypeId, baseBits + m.BitOffset, m.BitfieldSize, size));
        }
    }

    /// <summary>Finds a member by name, looking through anonymous struct and union members.</summary>
    /// <returns>The member with its offset from the start of <paramref name="id"/>, or null.</returns>
    public BtfField? FindMember(int id, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return FirstNamed(GetFlattenedMembers(id), name);
    }

    /// <summary>The first of <paramref name="fields"/> (a struct's flattened members) named <paramref name="name"/>.</summary>
    public static BtfField? FirstNamed(IReadOnlyList<BtfField> fields, string name)
    {
        for (int i = 0; i < fields.Count; i++)
        {
            if (string.Equals(fields[i].Name, name, StringComparison.Ordinal))
                return fields[i];
        }
        return null;
    }

    /// <summary>A hash table over this blob's type names, built on first use without decoding them: buckets hold
    /// the first local index + 1 whose name hashes there, <c>Next</c> chains the rest (ascending ids).</summary>
    private sealed class NameIndex(int[] buckets, int[] next)
    {
        public readonly int[] Buckets = buckets;
        public readonly int[] Next = next;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint HashName(ReadOnlySpan<byte> name)
    {
        uint h = 2166136261;
        foreach (byte b in name)
            h = (h ^ b) * 16777619;
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private NameIndex BuildNameIndex()
    {
        ReadAll();
        ReadAllStrings();
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, _count * 2));
        var buckets = new int[size];
        var next = new int[_count];
        uint lastOffset = uint.MaxValue;
        uint lastHash = 0;
        for (int i = _count - 1; i >= 0; i--)
        {
            uint nameOff = _words[_start[i]];
            if (nameOff == 0)
                continue;
            uint h = nameOff == lastOffset ? lastHash : HashName(StringBytes(nameOff));
            (lastOffset, lastHash) = (nameOff, h);
            ref int bucket = ref buckets[h & (uint)(size - 1)];
            next[i] = bucket;
            bucket = i + 1;
        }
        return new NameIndex(buckets, next);
    }

    /// <summary>Every type id with this name, the base's first, each in id order.</summary>
    public IEnumerable<int> FindAll(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var result = new List<int>();
        if (name.Length > 0)
            CollectByName(Encoding.UTF8.GetBytes(name), result);
        return result;
    }

    private void CollectByName(byte[] utf8, List<int> into)
    {
        Base?.CollectByName(utf8, into);
        var index = _names.Value;
        uint h = HashName(utf8);
        for (int local = index.Buckets[h & (uint)(index.Buckets.Length - 1)]; local != 0; local = index.Next[local - 1])
        {
            if (StringBytes(_words[_start[local - 1]]).SequenceEqual(utf8))
                into.Add(FirstId + local - 1);
        }
    }

    /// <summary>Finds the first type with this name and kind (the base's first).</summary>
    /// <returns>Whether one was found.</returns>
    public bool TryFind(string name, BtfKind kind, out int id)
    {
        ArgumentNullException.ThrowIfNull(name);
        id = 0;
        return name.Length > 0 && TryFind(Encoding.UTF8.GetBytes(name), (uint)kind, out id);
    }

    private bool TryFind(byte[] utf8, uint kind, out int id)
    {
        if (Base is not null && Base.TryFind(utf8, kind, out id))
            return true;
        if (_pending is null)
        {
            var index = _names.Value;
            uint h = HashName(utf8);
            for (int local = index.Buckets[h & (uint)(index.Buckets.Length - 1)]; local != 0; local = index.Next[local - 1])
            {
                int at = _start[local - 1];
                if ((_words[at + 1] >> 24 & 0x1f) == kind && StringBytes(_words[at]).SequenceEqual(utf8))
                {
                    id = FirstId + local - 1;
                    return true;
                }
            }
        }
        else
        {
            // A blob read as it is used: the records in id order, read as far as the first with the name. The few
            // names a tool looks up are early in a kernel's BTF; an index would need every name read first.
            for (int local = 0; local < Volatile.Read(ref _count) || TryReadRecord(local); local++)
            {
                int at = _start[local];
                if ((_words[at + 1] >> 24 & 0x1f) == kind && _words[at] != 0 && StringBytes(_words[at]).SequenceEqual(utf8))
                {
                    id = FirstId + local;
                    return true;
                }
            }
        }
        id = 0;
        return false;
    }

    /// <summary>Finds the first type with this name and kind.</summary>
    /// <exception cref="KvmException">There is none.</exception>
    public int Find(string name, BtfKind kind)
    {
        if (TryFind(name, kind, out int id))
            return id;
        throw new KvmException($"{SourceName}: no BTF {KindWord(kind)} named '{name}'");
    }

    /// <summary>Finds a struct or union by name, as C tools accept it: "task_struct", "struct task_struct",
    /// "union thread_union", or a typedef naming one.</summary>
    /// <returns>The struct or union's id (resolved through a typedef), or false.</returns>
    public bool TryFindComposite(string name, out int id)
    {
        ArgumentNullException.ThrowIfNull(name);
        name = name.Trim();
        if (name.StartsWith("struct ", StringComparison.Ordinal))
            return TryFind(name[7..].Trim(), BtfKind.Struct, out id);
        if (name.StartsWith("union ", StringComparison.Ordinal))
            return TryFind(name[6..].Trim(), BtfKind.Union, out id);
        if (TryFind(name, BtfKind.Struct, out id) || TryFind(name, BtfKind.Union, out id))
            return true;
        if (TryFind(name, BtfKind.Typedef, out int typedef))
        {
            id = Resolve(typedef);
            if (KindOf(id) is BtfKind.Struct or BtfKind.Union)
                return true;
        }
        id = 0;
        return false;
    }

    internal static string KindWord(BtfKind kind) => kind switch
    {
        BtfKind.FuncProto => "function prototype",
        BtfKind.DeclTag => "decl tag",
        BtfKind.TypeTag => "type tag",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
