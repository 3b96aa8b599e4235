using System.Text;

namespace KvmTyped.Dwarf;

/// <summary>What a named type definition is, for deduplication.</summary>
internal enum TypeKeyKind : byte
{
    /// <summary>A struct (or C++ class).</summary>
    Struct = 1,

    /// <summary>A union.</summary>
    Union,

    /// <summary>A named enum.</summary>
    Enum,

    /// <summary>A typedef.</summary>
    Typedef,

    /// <summary>A base type (int, char, float…).</summary>
    Base,

    /// <summary>An anonymous enum, named by its first enumerator (C enumerators share one namespace, so the first
    /// enumerator identifies the enum).</summary>
    AnonymousEnum,
}

/// <summary>A named type: kind, size in bytes (0 for typedefs; <see cref="DwarfTypeIndex.AnySize"/> when looking up
/// a definition for a declaration), name, and the line it is declared on (DW_AT_decl_line; 0 when absent or when
/// looking up by name).</summary>
internal readonly record struct TypeKey(TypeKeyKind Kind, uint Size, string Name, uint Line);

/// <summary>The first definition of every named struct, union, enum, typedef and base type among the top-level entries
/// of every unit, found without decoding anything else: each unit's top-level entries are skimmed, and the children of
/// every entry are skipped through DW_AT_sibling (walked only where a producer left it out).</summary>
/// <remarks>
/// <para>Rule: one definition per (kind, name, byte size, declaration line), the first in unit order; typedefs have
/// no size, and anonymous enums are named by their first enumerator. The line (DW_AT_decl_line) costs nothing to read
/// and tells apart most same-named, same-sized types of different source files, while a header's type seen from
/// every unit that includes it keeps one line. A declaration (DW_AT_declaration) is no definition. Units are skimmed in
/// parallel, each worker taking a contiguous run of units, and their results merged in unit order, so the outcome is
/// the same as a sequential skim.</para>
/// <para>Names are compared first by where they lie: a linked file's <c>.debug_str</c> holds each string once (the
/// linker merges the string sections of its inputs), so during the skim a name is its string offset, and the bytes are
/// compared only once per distinct offset when the workers' results are merged (which also joins names written inline
/// with DW_FORM_string, as gcc does for names of three bytes or fewer).</para>
/// </remarks>
internal sealed class DwarfTypeIndex
{
    /// <summary>The size in a key that finds the first definition of a name whatever its size.</summary>
    public const uint AnySize = uint.MaxValue;

    private DwarfTypeIndex(Dictionary<TypeKey, long> first, List<(TypeKey Key, long Die)> definitions)
    {
        First = first;
        Definitions = definitions;
    }

    /// <summary>The first definition of each key; under <see cref="AnySize"/> and line 0, the one definition of a struct,
    /// union or enum name, or -1 when the file has several different ones.</summary>
    public Dictionary<TypeKey, long> First { get; }

    /// <summary>Every chosen definition (one per key, <see cref="AnySize"/> keys excluded), in unit and entry order.</summary>
    public List<(TypeKey Key, long Die)> Definitions { get; }

    /// <summary>Number of top-level entries the skim looked at (for measurements).</summary>
    public long EntriesSkimmed { get; private set; }

    private readonly record struct LocKey(long Location, uint Size, uint Line, TypeKeyKind Kind);

    private sealed class Worker
    {
        public readonly FirstTable Found = new();
        public readonly Dictionary<(long, int, int, int), DwarfAbbrevTable> Tables = [];
        public long Entries;
    }

    /// <summary>An insert-only hash table from a name location to the first entry seen with it (open addressing).</summary>
    private sealed class FirstTable
    {
        private LocKey[] _keys = new LocKey[1 << 14];
        private long[] _values = new long[1 << 14];
        private bool[] _used = new bool[1 << 14];

        public int Count { get; private set; }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public bool TryAdd(in LocKey key, long value)
        {
            if (Count * 2 >= _keys.Length)
                Grow();
            int mask = _keys.Length - 1;
            for (int i = Hash(key) & mask; ; i = (i + 1) & mask)
            {
                if (!_used[i])
                {
                    _used[i] = true;
                    _keys[i] = key;
                    _values[i] = value;
                    Count++;
                    return true;
                }
                ref var k = ref _keys[i];
                if (k.Location == key.Location && k.Size == key.Size && k.Line == key.Line && k.Kind == key.Kind)
                    return false;
            }
        }

        private static int Hash(in LocKey k)
        {
            ulong h = (ulong)k.Location * 0x9E3779B97F4A7C15UL ^ ((ulong)k.Size << 32 | k.Line) * 0xC2B2AE3D27D4EB4FUL ^ (ulong)k.Kind;
            return (int)(h >> 33);
        }

        private void Grow()
        {
            var keys = _keys;
            var values = _values;
            var used = _used;
            _keys = new LocKey[keys.Length * 2];
            _values = new long[keys.Length * 2];
            _used = new bool[keys.Length * 2];
            Count = 0;
            for (int i = 0; i < keys.Length; i++)
                if (used[i])
                    TryAdd(keys[i], values[i]);
        }

        public IEnumerable<(LocKey Key, long Value)> Entries()
        {
            for (int i = 0; i < _keys.Length; i++)
                if (_used[i])
                    yield return (_keys[i], _values[i]);
        }
    }

    /// <summary>Skims every unit with up to <paramref name="parallelism"/> threads.</summary>
    /// <exception cref="KvmFormatException">An entry is damaged.</exception>
    public static DwarfTypeIndex Build(DwarfFile file, int parallelism)
    {
        var units = file.Units;
        int workers = Math.Clamp(parallelism, 1, Math.Max(1, units.Count));
        var ranges = Partition(units, workers);
        var results = new Worker[ranges.Count];
        if (ranges.Count == 1)
            results[0] = Skim(file, ranges[0].From, ranges[0].To);
        else
        {
            try
            {
                Parallel.For(0, ranges.Count, new ParallelOptions { MaxDegreeOfParallelism = ranges.Count },
                    i => results[i] = Skim(file, ranges[i].From, ranges[i].To));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                // Report the error of the earliest unit, so the message does not depend on thread timing.
                var earliest = e.InnerExceptions.OfType<KvmFormatException>().OrderBy(x => x.Offset ?? long.MaxValue).FirstOrDefault();
                if (earliest is not null)
                    throw earliest;
                throw e.InnerExceptions[0];
            }
        }

        // Merge in unit order: a worker's entries all come after the previous worker's.
        var merged = new Dictionary<LocKey, long>(results.Sum(r => r.Found.Count));
        foreach (var r in results)
            foreach (var (k, v) in r.Found.Entries())
                merged.TryAdd(k, v);
        var ordered = merged.OrderBy(kv => kv.Value).ToList();

        var first = new Dictionary<TypeKey, long>(ordered.Count * 5 / 4);
        var definitions = new List<(TypeKey, long)>(ordered.Count);
        var names = new Dictionary<long, string>();
        foreach (var (loc, die) in ordered)
        {
            if (!names.TryGetValue(loc.Location, out var name))
                names[loc.Location] = name = Encoding.UTF8.GetString(LocationBytes(file, loc.Location));
            var key = new TypeKey(loc.Kind, loc.Size, name, loc.Line);
            if (!first.TryAdd(key, die))
                continue;
            definitions.Add((key, die));
            // The definition a declaration of the name stands for: the only one, or none (-1) when the name has several.
            if (loc.Kind is TypeKeyKind.Struct or TypeKeyKind.Union or TypeKeyKind.Enum && !first.TryAdd(key with { Size = AnySize, Line = 0 }, die))
                first[key with { Size = AnySize, Line = 0 }] = -1;
        }
        return new DwarfTypeIndex(first, definitions) { EntriesSkimmed = results.Sum(r => r.Entries) };
    }

    private static List<(int From, int To)> Partition(IReadOnlyList<DwarfUnit> units, int workers)
    {
        long total = units.Sum(u => (long)(u.End - u.Start));
        var ranges = new List<(int, int)>();
        int from = 0;
        long acc = 0;
        for (int i = 0; i < units.Count; i++)
        {
            acc += units[i].End - units[i].Start;
            if (ranges.Count < workers - 1 && acc * workers >= total * (ranges.Count + 1))
            {
                ranges.Add((from, i + 1));
                from = i + 1;
            }
        }
        if (from < units.Count || ranges.Count == 0)
            ranges.Add((from, units.Count));
        return ranges;
    }

    // A name's location: what holds it (NameIn) in the top byte, its offset below (a global offset for inline names).
    private static long Location(DwarfUnit unit, NameIn where, long offset) =>
        (long)where << 56 | (where == NameIn.Unit ? unit.Global((int)offset) : offset);

    private static ReadOnlySpan<byte> LocationBytes(DwarfFile file, long location)
    {
        var where = (NameIn)(location >>> 56);
        long offset = location & ((1L << 56) - 1);
        var sections = file.Sections;
        return where switch
        {
            NameIn.Str => DwarfFile.StringAt(sections.Str, offset),
            NameIn.LineStr => DwarfFile.StringAt(sections.LineStr, offset),
            NameIn.Unit when offset < sections.Info.Length => DwarfFile.StringAt(sections.Info, offset),
            NameIn.Unit => DwarfFile.StringAt(sections.Types, offset - sections.Info.Length),
            _ => default,
        };
    }

    private static Worker Skim(DwarfFile file, int from, int to)
    {
        var w = new Worker();
        for (int u = from; u < to; u++)
            SkimUnit(file, file.Units[u], w);
        return w;
    }

    private static void SkimUnit(DwarfFile file, DwarfUnit unit, Worker w)
    {
        file.Prepare(unit, w.Tables);
        if (unit.FirstDie >= unit.End)
            return;
        int before = w.Found.Count;
        try
        {
            SkimEntries(file, unit, w);
        }
        finally
        {
            // A unit that defined nothing new for this worker holds no chosen definition, so conversion will not
            // read it: its abbreviation table can go. Others keep theirs for the conversion.
            if (w.Found.Count == before)
                DwarfFile.Release(unit);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void SkimEntries(DwarfFile file, DwarfUnit unit, Worker w)
    {
        var r = new DieReader(file, unit, unit.FirstDie);
        if (!r.ReadAbbrev(out var root))
            return;
        r.SkipAttributes(root);
        if (!root.HasChildren)
            return;
        var found = w.Found;
        long entries = 0;
        while (true)
        {
            int at = r.Position;
            if (!r.ReadAbbrev(out var a))
                break;
            entries++;
            TypeKeyKind kind;
            switch (a.Tag)
            {
                case DwTag.StructureType or DwTag.ClassType:
                    kind = TypeKeyKind.Struct;
                    break;
                case DwTag.UnionType:
                    kind = TypeKeyKind.Union;
                    break;
                case DwTag.EnumerationType:
                    kind = TypeKeyKind.Enum;
                    break;
                case DwTag.Typedef:
                    kind = TypeKeyKind.Typedef;
                    break;
                case DwTag.BaseType:
                    kind = TypeKeyKind.Base;
                    break;
                default:
                {
                    long sibling = r.SkipAttributes(a);
                    if (a.HasChildren)
                        r.SkipChildren(sibling, at);
                    continue;
                }
            }
            DieInfo die = default;
            r.ReadAttributes(a, at, ref die);
            if (!die.Declaration && die.NameSection is NameIn.Str or NameIn.LineStr or NameIn.Unit && die.NameOffset >= 0)
            {
                uint size = kind == TypeKeyKind.Typedef ? 0 : die.ByteSize.IsConstant ? (uint)Math.Min(die.ByteSize.Raw, AnySize - 1) : 0;
                found.TryAdd(new LocKey(Location(unit, die.NameSection, die.NameOffset), size, die.DeclLine, kind), die.Offset);
            }
            else if (kind == TypeKeyKind.Enum && !die.Declaration && die.NameSection == NameIn.None && a.HasChildren)
            {
                // An anonymous enum is known by its first enumerator.
                if (r.TryRead(out var first) && first.Tag == DwTag.Enumerator && first.NameSection is NameIn.Str or NameIn.LineStr or NameIn.Unit && first.NameOffset >= 0)
                {
                    uint size = die.ByteSize.IsConstant ? (uint)Math.Min(die.ByteSize.Raw, AnySize - 1) : 0;
                    found.TryAdd(new LocKey(Location(unit, first.NameSection, first.NameOffset), size, die.DeclLine, TypeKeyKind.AnonymousEnum), die.Offset);
                }
                r.Position = die.AttributesEnd;
            }
            if (a.HasChildren)
                r.SkipChildren(die.Sibling, at);
        }
        w.Entries += entries;
    }
}
