using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmTyped.Btf;
using KvmTyped.Formats.Elf;

namespace KvmTyped.Dwarf;

/// <summary>What a conversion did, for messages and measurements.</summary>
/// <param name="Units">Units in the file.</param>
/// <param name="EntriesSkimmed">Top-level entries looked at while indexing.</param>
/// <param name="Definitions">Distinct named definitions found (after deduplication).</param>
/// <param name="Types">BTF types written.</param>
/// <param name="IndexTime">Time to read the unit headers and skim every unit.</param>
/// <param name="ConvertTime">Time to convert the definitions and write the blob.</param>
internal readonly record struct DwarfConversionStats(int Units, long EntriesSkimmed, int Definitions, int Types, TimeSpan IndexTime, TimeSpan ConvertTime)
{
    /// <summary>CPU time of every thread of the process while the index was built (the skim's cost on a shared machine,
    /// where wall time also holds the waits for a CPU).</summary>
    public TimeSpan IndexCpuTime { get; init; }
}

/// <summary>Turns the type information of an ELF file's DWARF into BTF, as <c>pahole -J</c> does, so that everything
/// reading BTF (<see cref="BtfTypes"/>, the relocator, the dump, schema import) works from DWARF unchanged.</summary>
/// <remarks>
/// <para>What is converted: every named struct, union, enum, typedef and base type defined at the top level of any
/// unit (see <see cref="DwarfTypeIndex"/> for how one definition per name is chosen), every anonymous enum, and every
/// type those reach (pointers, arrays, qualifiers, function prototypes, anonymous structs and unions). Functions and
/// variables are not converted. A type is decoded only when it is reached, and each entry at most once.</para>
/// <para>Deduplication: a reference to a named struct, union or enum goes to the chosen definition of the same kind,
/// name, size and declaration line; a reference to a declaration (an opaque <c>struct foo;</c>) goes to the definition
/// of that name when the file has exactly one, and otherwise becomes a BTF FWD (as BTF deduplication leaves an
/// ambiguous forward declaration); a typedef goes to the first typedef of its name and line when both name a target
/// of the same shape (kind, name and size, following pointers and qualifiers a few levels), otherwise it is kept as a
/// second typedef of that name. Pointers, qualifiers, arrays, prototypes and base types are shared by value. What this
/// loses: two different structs of the same name, size and declaration line in different source files become one
/// (the first); likewise two typedefs whose targets have the same shape. Types defined inside function bodies are not
/// read (they are not top-level entries), unless a converted type refers to them.</para>
/// <para>Encoding, as pahole does it: bitfields with the kind flag (bit size and offset in the member's offset word);
/// <c>_Bool</c> as a BOOL int, signed integers SIGNED and <c>char</c> by its signedness; enums of 8 bytes, or whose
/// values need more than 32 bits, as ENUM64, with the kind flag when signed; arrays with one level per dimension
/// (pahole 1.24 folds a multi-dimensional array into one); <c>_Atomic</c> dropped; C++ references as pointers.</para>
/// <para>Limits (constants below) stop hostile input: nesting of types reached through one another, array dimensions,
/// member counts, and a final check that no type contains itself by value (a cycle of typedefs, qualifiers, arrays or
/// members). Errors are <see cref="KvmFormatException"/>s naming the section and the offset of the entry.</para>
/// </remarks>
internal sealed class DwarfToBtf
{
    /// <summary>Changes whenever the BTF this produces for the same input changes (cached blobs carry it).</summary>
    public const int FormatVersion = 1;

    /// <summary>How deeply types may be reached through one another at once (pointer to array of const…).</summary>
    public const int MaxTypeDepth = 256;

    /// <summary>The most dimensions one array may have.</summary>
    public const int MaxArrayDimensions = 64;

    /// <summary>The most members, enumerators or parameters one type may have (BTF's 16-bit vlen).</summary>
    public const int MaxChildren = BtfWriter.MaxVlen;

    /// <summary>The largest struct, union or base type accepted, in bytes (BTF offsets of bitfield structs are 24 bits).</summary>
    public const long MaxTypeSize = uint.MaxValue / 8;

    /// <summary>How many levels a typedef's target is compared by when two typedefs share a name.</summary>
    private const int ShapeDepth = 4;

    /// <summary>The name pahole gives the index type of arrays.</summary>
    private static readonly byte[] ArrayIndexName = "__ARRAY_SIZE_TYPE__"u8.ToArray();

    private readonly DwarfFile _file;
    private readonly DwarfTypeIndex _index;
    private readonly BtfWriter _w = new();
    private readonly Dictionary<long, int> _memo = [];
    private readonly HashSet<long> _inProgress = [];
    private readonly Dictionary<TypeKey, int> _canonical = [];
    private readonly Queue<(int Id, long Die)> _pending = new();
    private readonly Dictionary<(BtfKind Kind, int Target), int> _modifiers = [];
    private readonly Dictionary<(int Element, uint Count), int> _arrays = [];
    private readonly Dictionary<string, int> _protos = new(StringComparer.Ordinal);
    private readonly Dictionary<(bool Union, string Name), int> _forwards = [];
    private readonly Dictionary<(BtfKind Kind, string Name, uint Size, uint Word), int> _bases = [];
    private readonly Dictionary<(string Name, ulong Shape), int> _typedefVariants = [];
    private readonly Dictionary<long, ulong> _shapes = [];
    private readonly List<long> _origin = [-1];
    private readonly List<(int From, int To)> _valueEdges = [];
    private readonly Dictionary<(long, int, int, int), DwarfAbbrevTable> _tables = [];
    private int _indexType;

    private DwarfToBtf(DwarfFile file, DwarfTypeIndex index)
    {
        _file = file;
        _index = index;
    }

    /// <summary>Converts the DWARF of an ELF file to a BTF blob (parse it with <see cref="BtfTypes.Parse(ReadOnlySpan{byte}, BtfTypes?, string?, int?)"/>).
    /// The image's file must stay open during the call.</summary>
    /// <returns>The blob, or null when the file has no <c>.debug_info</c>.</returns>
    /// <exception cref="KvmFormatException">The DWARF is damaged or hostile.</exception>
    public static byte[]? Convert(ElfImage image, int parallelism = 0) => Convert(image, parallelism, out _);

    /// <inheritdoc cref="Convert(ElfImage, int)"/>
    public static byte[]? Convert(ElfImage image, int parallelism, out DwarfConversionStats stats)
    {
        ArgumentNullException.ThrowIfNull(image);
        stats = default;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var sections = DwarfSections.Load(image);
        if (sections is null)
            return null;
        var file = DwarfFile.Open(sections);
        var index = DwarfTypeIndex.Build(file, parallelism > 0 ? parallelism : DefaultParallelism);
        var indexTime = sw.Elapsed;
        var indexCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var converter = new DwarfToBtf(file, index);
        byte[] blob;
        try
        {
            blob = converter.Run();
        }
        catch (KvmException e) when (e is not KvmFormatException)
        {
            throw new KvmFormatException(image.File.Path, null, $"its DWARF does not fit BTF: {e.Message}");
        }
        stats = new DwarfConversionStats(file.Units.Count, index.EntriesSkimmed, index.Definitions.Count, converter._w.Count, indexTime, sw.Elapsed - indexTime) { IndexCpuTime = indexCpu };
        return blob;
    }

    /// <summary>Converts the chosen definitions of an index (the second half of <see cref="Convert(ElfImage, int)"/>).</summary>
    internal static byte[] Convert(DwarfFile file, DwarfTypeIndex index, out int types)
    {
        var converter = new DwarfToBtf(file, index);
        var blob = converter.Run();
        types = converter._w.Count;
        return blob;
    }

    /// <summary>Threads used to skim units when none are asked for: every core, up to 8.</summary>
    public static int DefaultParallelism => Math.Clamp(Environment.ProcessorCount, 1, 8);

    private byte[] Run()
    {
        foreach (var (key, die) in _index.Definitions)
        {
            switch (key.Kind)
            {
                case TypeKeyKind.Struct or TypeKeyKind.Union or TypeKeyKind.Typedef:
                    Canonical(key, die);
                    break;
                default:
                    TypeOf(die, 0, die);
                    break;
            }
            Drain();
        }
        Drain();
        CheckValueCycles();
        return _w.ToArray(_file.BigEndian);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Drain()
    {
        while (_pending.TryDequeue(out var item))
        {
            var r = Reader(item.Die, out var d);
            if (d.Tag == DwTag.Typedef)
            {
                int target = TypeOf(d.Type, 1, d.Offset);
                _valueEdges.Add((item.Id, target));
                _w.Define(item.Id, BtfKind.Typedef, _w.String(_file.NameBytes(d)), 0, false, (uint)target, default);
            }
            else
                DefineComposite(item.Id, ref r, d);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private DieReader Reader(long global, out DieInfo die)
    {
        var unit = _file.UnitOf(global, _file.Units[0], 0);
        _file.Prepare(unit, _tables);
        var r = new DieReader(_file, unit, unit.Local(global));
        if (!r.TryRead(out die))
            throw unit.Section.Error(unit.Local(global), "a type reference points at a null entry");
        return r;
    }

    private KvmFormatException Error(in DieInfo d, string what) => d.Unit!.Section.Error(d.SectionOffset, what);

    private int NewId(long origin)
    {
        if (_w.Count >= BtfWriter.MaxTypes)
            throw new KvmFormatException(_file.Path, null, $"the DWARF converts to more than {BtfWriter.MaxTypes} BTF types");
        int id = _w.Reserve();
        _origin.Add(origin);
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Canonical(TypeKey key, long die)
    {
        if (_canonical.TryGetValue(key, out int id))
            return id;
        id = NewId(die);
        _canonical[key] = id;
        _memo[die] = id;
        _pending.Enqueue((id, die));
        return id;
    }

    /// <summary>The BTF id of the type entry at <paramref name="die"/> (-1 = void), converting it on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int TypeOf(long die, int depth, long referrer)
    {
        if (die < 0)
            return 0;
        if (_memo.TryGetValue(die, out int known))
            return known;
        if (depth > MaxTypeDepth)
        {
            var unit = _file.UnitOf(die, _file.Units[0], 0);
            throw unit.Section.Error(unit.Local(die), $"types refer to one another more than {MaxTypeDepth} deep");
        }
        if (!_inProgress.Add(die))
        {
            var unit = _file.UnitOf(die, _file.Units[0], 0);
            throw unit.Section.Error(unit.Local(die), "type refers to itself (a cycle of type references)");
        }
        Reader(die, out var d);
        int id = d.Tag switch
        {
            // A stub standing for a type unit's type (DW_AT_signature): gcc writes these with or without DW_AT_declaration.
            DwTag.StructureType or DwTag.ClassType or DwTag.UnionType or DwTag.EnumerationType when d.SignatureTarget >= 0 && !d.HasChildren
                => TypeOf(d.SignatureTarget, depth + 1, d.Offset),
            DwTag.BaseType => Base(d),
            DwTag.StructureType or DwTag.ClassType or DwTag.UnionType => Composite(d),
            DwTag.EnumerationType => Enum(d),
            DwTag.Typedef => Typedef(d, depth),
            DwTag.PointerType or DwTag.ReferenceType or DwTag.RvalueReferenceType => Modifier(BtfKind.Ptr, TypeOf(d.Type, depth + 1, d.Offset), d.Offset),
            DwTag.ConstType => Modifier(BtfKind.Const, TypeOf(d.Type, depth + 1, d.Offset), d.Offset),
            DwTag.VolatileType => Modifier(BtfKind.Volatile, TypeOf(d.Type, depth + 1, d.Offset), d.Offset),
            DwTag.RestrictType => Modifier(BtfKind.Restrict, TypeOf(d.Type, depth + 1, d.Offset), d.Offset),
            DwTag.AtomicType or DwTag.ImmutableType => TypeOf(d.Type, depth + 1, d.Offset),
            DwTag.ArrayType => Array(d, depth),
            DwTag.SubroutineType => Prototype(d, depth),
            DwTag.UnspecifiedType or DwTag.PtrToMemberType => 0,
            _ => throw Error(d, $"entry with tag 0x{d.Tag:x} is used as a type (referred to from 0x{referrer:x})"),
        };
        _inProgress.Remove(die);
        _memo[die] = id;
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Modifier(BtfKind kind, int target, long origin)
    {
        if (_modifiers.TryGetValue((kind, target), out int id))
            return id;
        id = NewId(origin);
        _w.Define(id, kind, 0, 0, false, (uint)target, default);
        _modifiers[(kind, target)] = id;
        if (kind != BtfKind.Ptr)
            _valueEdges.Add((id, target));
        return id;
    }

    private uint SizeOf(in DieInfo d, bool required)
    {
        if (!d.ByteSize.IsConstant)
            return required ? throw Error(d, "type has no constant DW_AT_byte_size") : 0u;
        if (d.ByteSize.Raw > MaxTypeSize)
            throw Error(d, $"DW_AT_byte_size {d.ByteSize.Raw} is larger than {MaxTypeSize}");
        return (uint)d.ByteSize.Raw;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Base(in DieInfo d)
    {
        uint size = SizeOf(d, required: true);
        var nameBytes = _file.NameBytes(d);
        string name = System.Text.Encoding.UTF8.GetString(nameBytes);
        int enc = d.Encoding;
        uint bits = d.BitSize.IsConstant && d.BitSize.Raw > 0 && d.BitSize.Raw < size * 8UL ? (uint)d.BitSize.Raw : size * 8;
        BtfKind kind;
        uint word = 0;
        if (enc is DwAte.Float or DwAte.ComplexFloat or DwAte.DecimalFloat && size is 2 or 4 or 8 or 12 or 16)
            kind = BtfKind.Float;
        else if (size is 1 or 2 or 4 or 8 or 16 && enc is not (DwAte.Float or DwAte.ComplexFloat or DwAte.DecimalFloat))
        {
            kind = BtfKind.Int;
            uint encoding = enc switch
            {
                DwAte.Signed or DwAte.SignedChar or DwAte.SignedFixed => 1u,
                DwAte.Boolean => 4u,
                _ => 0u,
            };
            word = encoding << 24 | bits;
        }
        else
            kind = BtfKind.Struct; // a size BTF has no integer or float for: a memberless struct keeps the size
        if (_bases.TryGetValue((kind, name, size, word), out int id))
            return id;
        id = NewId(d.Offset);
        uint nameOff = _w.String(nameBytes);
        if (kind == BtfKind.Int)
            _w.Define(id, kind, nameOff, 0, false, size, [word]);
        else
            _w.Define(id, kind, nameOff, 0, false, size, default);
        _bases[(kind, name, size, word)] = id;
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Composite(in DieInfo d)
    {
        bool union = d.Tag == DwTag.UnionType;
        var kind = union ? TypeKeyKind.Union : TypeKeyKind.Struct;
        string name = _file.Name(d);
        if (d.Declaration || (!d.ByteSize.IsConstant && !d.HasChildren))
        {
            if (name.Length > 0 && _index.First.TryGetValue(new TypeKey(kind, DwarfTypeIndex.AnySize, name, 0), out long def) && def >= 0)
                return Canonical(DefinitionKey(def, kind, name), def);
            return Forward(union, name, d.Offset);
        }
        if (name.Length == 0)
        {
            int anon = NewId(d.Offset);
            _pending.Enqueue((anon, d.Offset));
            return anon;
        }
        var key = new TypeKey(kind, SizeOf(d, required: false), name, d.DeclLine);
        if (_canonical.TryGetValue(key, out int id))
            return id;
        return Canonical(key, _index.First.TryGetValue(key, out long first) ? first : d.Offset);
    }

    private TypeKey DefinitionKey(long die, TypeKeyKind kind, string name)
    {
        Reader(die, out var d);
        return new TypeKey(kind, SizeOf(d, required: false), name, d.DeclLine);
    }

    private int Forward(bool union, string name, long origin)
    {
        if (_forwards.TryGetValue((union, name), out int id))
            return id;
        id = NewId(origin);
        _w.Define(id, BtfKind.Fwd, _w.String(name), 0, union, 0, default);
        _forwards[(union, name)] = id;
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Typedef(in DieInfo d, int depth)
    {
        if (!d.HasName)
            return TypeOf(d.Type, depth + 1, d.Offset);
        string name = _file.Name(d);
        var key = new TypeKey(TypeKeyKind.Typedef, 0, name, d.DeclLine);
        if (!_index.First.TryGetValue(key, out long first) || first == d.Offset)
            return Canonical(key, d.Offset);
        ulong mine = Shape(d.Offset, ShapeDepth);
        if (Shape(first, ShapeDepth) == mine)
            return Canonical(key, first);
        if (_typedefVariants.TryGetValue((name, mine), out int id))
            return id;
        id = NewId(d.Offset);
        _typedefVariants[(name, mine)] = id;
        _pending.Enqueue((id, d.Offset));
        return id;
    }

    /// <summary>A hash of what a typedef names: tag, name and size of its target, following pointers, qualifiers and
    /// typedefs for a few levels.</summary>
    private ulong Shape(long typedefDie, int levels)
    {
        if (_shapes.TryGetValue(typedefDie, out ulong s))
            return s;
        ulong h = 14695981039346656037;
        long at = typedefDie;
        for (int i = 0; i < levels && at >= 0; i++)
        {
            Reader(at, out var d);
            if (i > 0)
            {
                h = (h ^ (ulong)d.Tag) * 1099511628211;
                h = (h ^ (d.ByteSize.IsConstant ? d.ByteSize.Raw : ulong.MaxValue)) * 1099511628211;
                foreach (byte b in _file.NameBytes(d))
                    h = (h ^ b) * 1099511628211;
                h = (h ^ 0xff) * 1099511628211;
            }
            if (d.Tag is not (DwTag.Typedef or DwTag.PointerType or DwTag.ConstType or DwTag.VolatileType or DwTag.RestrictType or DwTag.ArrayType) && i > 0)
                break;
            at = d.Type;
        }
        _shapes[typedefDie] = h;
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Enum(in DieInfo d)
    {
        string name = _file.Name(d);
        if (d.Declaration && name.Length > 0 && _index.First.TryGetValue(new TypeKey(TypeKeyKind.Enum, DwarfTypeIndex.AnySize, name, 0), out long def) && def >= 0 && def != d.Offset)
            return TypeOf(def, 1, d.Offset);
        uint size = d.Declaration && !d.ByteSize.IsConstant ? 4 : SizeOf(d, required: true);
        if (size is not (1 or 2 or 4 or 8))
            throw Error(d, $"enum of {size} bytes (BTF enums are 1, 2, 4 or 8)");
        // Enumerators as (BTF name, value); the first one's name also names an anonymous enum.
        var enumerators = new List<(uint Name, DwConst Value)>();
        string? firstEnumerator = null;
        if (d.HasChildren)
        {
            var r = Reader(d.Offset, out _);
            while (r.TryRead(out var e))
            {
                if (e.Tag == DwTag.Enumerator)
                {
                    if (enumerators.Count >= MaxChildren)
                        throw Error(d, $"enum has more than {MaxChildren} enumerators");
                    if (!e.ConstValue.IsConstant)
                        throw Error(e, "enumerator has no constant DW_AT_const_value");
                    firstEnumerator ??= _file.Name(e);
                    enumerators.Add((_w.String(_file.NameBytes(e)), e.ConstValue));
                }
                if (e.HasChildren)
                    r.SkipChildren(e.Sibling, e.SectionOffset);
            }
        }

        // One enum per key: named enums by name and size, anonymous ones by their first enumerator.
        TypeKey? key = name.Length > 0 ? new TypeKey(TypeKeyKind.Enum, size, name, d.DeclLine)
            : firstEnumerator is not null ? new TypeKey(TypeKeyKind.AnonymousEnum, size, firstEnumerator, d.DeclLine) : null;
        if (key is { } k)
        {
            if (_canonical.TryGetValue(k, out int known))
                return known;
            if (_index.First.TryGetValue(k, out long chosen) && chosen != d.Offset)
                return TypeOf(chosen, 1, d.Offset);
        }

        bool signed = IsSignedBase(d.Type) || enumerators.Exists(e => e.Value.Kind == ConstKind.Signed && e.Value.Value < 0);
        bool wide = size == 8;
        var values = new long[enumerators.Count];
        for (int i = 0; i < values.Length; i++)
        {
            var c = enumerators[i].Value;
            // A data form as wide as a signed enum holds its value sign-extended; narrower ones (gcc) hold it as it is.
            long v = signed && c.Kind == ConstKind.Data && c.Width == size ? c.SignExtended : c.Kind == ConstKind.Data ? unchecked((long)c.Raw) : c.Value;
            values[i] = v;
            if (signed ? v is < int.MinValue or > int.MaxValue : (ulong)v > uint.MaxValue)
                wide = true;
        }
        int stride = wide ? 3 : 2;
        var extra = new uint[values.Length * stride];
        for (int i = 0; i < values.Length; i++)
        {
            ulong v = unchecked((ulong)values[i]);
            extra[stride * i] = enumerators[i].Name;
            extra[stride * i + 1] = (uint)v;
            if (wide)
                extra[stride * i + 2] = (uint)(v >> 32);
        }
        int id = NewId(d.Offset);
        _w.Define(id, wide ? BtfKind.Enum64 : BtfKind.Enum, _w.String(name), values.Length, signed, size, extra);
        if (key is { } k2)
            _canonical[k2] = id;
        return id;
    }

    private bool IsSignedBase(long die)
    {
        for (int i = 0; i < MaxTypeDepth && die >= 0; i++)
        {
            Reader(die, out var d);
            if (d.Tag == DwTag.BaseType)
                return d.Encoding is DwAte.Signed or DwAte.SignedChar;
            if (d.Tag is not (DwTag.Typedef or DwTag.ConstType or DwTag.VolatileType))
                return false;
            die = d.Type;
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Array(in DieInfo d, int depth)
    {
        int element = TypeOf(d.Type, depth + 1, d.Offset);
        if (d.Type < 0)
            throw Error(d, "array has no element type");
        Span<uint> counts = stackalloc uint[MaxArrayDimensions];
        int dims = 0;
        if (d.HasChildren)
        {
            var r = Reader(d.Offset, out _);
            while (r.TryRead(out var s))
            {
                if (s.Tag == DwTag.SubrangeType)
                {
                    if (dims >= MaxArrayDimensions)
                        throw Error(d, $"array has more than {MaxArrayDimensions} dimensions");
                    counts[dims++] = ElementCount(s);
                }
                if (s.HasChildren)
                    r.SkipChildren(s.Sibling, s.SectionOffset);
            }
        }
        if (dims == 0)
            counts[dims++] = 0;
        int id = element;
        for (int i = dims - 1; i >= 0; i--)
            id = ArrayOf(id, counts[i], d.Offset);
        return id;
    }

    private uint ElementCount(in DieInfo s)
    {
        long count;
        if (s.Count.IsConstant)
            count = s.Count.Value;
        else if (s.UpperBound.IsConstant)
        {
            if (s.UpperBound.IsMinusOne)
                return 0;
            long lower = s.LowerBound.IsConstant ? s.LowerBound.Value : 0;
            long upper = s.UpperBound.Value;
            count = upper == long.MaxValue || upper < lower - 1 ? -1 : upper - lower + 1;
        }
        else
            return 0; // flexible, or of a size known only at run time
        if (count < 0 || count > uint.MaxValue)
            throw Error(s, $"array dimension of {count} elements is out of range");
        return (uint)count;
    }

    private int ArrayOf(int element, uint count, long origin)
    {
        if (_arrays.TryGetValue((element, count), out int id))
            return id;
        if (_indexType == 0)
        {
            _indexType = NewId(origin);
            _w.Define(_indexType, BtfKind.Int, _w.String(ArrayIndexName), 0, false, 4, [32u]);
        }
        id = NewId(origin);
        _w.Define(id, BtfKind.Array, 0, 0, false, 0, [(uint)element, (uint)_indexType, count]);
        _arrays[(element, count)] = id;
        _valueEdges.Add((id, element));
        return id;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Prototype(in DieInfo d, int depth)
    {
        int ret = TypeOf(d.Type, depth + 1, d.Offset);
        var words = new List<uint>();
        if (d.HasChildren)
        {
            var r = Reader(d.Offset, out _);
            while (r.TryRead(out var p))
            {
                if (p.Tag is DwTag.FormalParameter or DwTag.UnspecifiedParameters)
                {
                    if (words.Count >= 2 * MaxChildren)
                        throw Error(d, $"function type has more than {MaxChildren} parameters");
                    if (p.Tag == DwTag.UnspecifiedParameters)
                    {
                        words.Add(0);
                        words.Add(0);
                    }
                    else
                    {
                        words.Add(_w.String(_file.NameBytes(p)));
                        words.Add((uint)TypeOf(p.Type, depth + 1, p.Offset));
                    }
                }
                if (p.HasChildren)
                    r.SkipChildren(p.Sibling, p.SectionOffset);
            }
        }
        string key = ret.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + string.Join(',', words);
        if (_protos.TryGetValue(key, out int id))
            return id;
        id = NewId(d.Offset);
        _w.Define(id, BtfKind.FuncProto, 0, words.Count / 2, false, (uint)ret, CollectionsMarshal.AsSpan(words));
        _protos[key] = id;
        return id;
    }

    private readonly record struct Member(uint Name, int Type, long BitOffset, int BitSize, long Origin);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DefineComposite(int id, ref DieReader r, in DieInfo d)
    {
        bool union = d.Tag == DwTag.UnionType;
        uint size = SizeOf(d, required: false);
        var members = new List<Member>();
        if (d.HasChildren)
        {
            while (r.TryRead(out var m))
            {
                if (m.Tag == DwTag.Member && !m.Declaration)
                {
                    if (members.Count >= MaxChildren)
                        throw Error(d, $"{(union ? "union" : "struct")} has more than {MaxChildren} members");
                    if (m.Type < 0)
                        throw Error(m, "member has no type");
                    int type = TypeOf(m.Type, 1, m.Offset);
                    var (bitOffset, bitSize) = Placement(m);
                    ulong end = (ulong)bitOffset + (ulong)bitSize;
                    if (end > 8UL * size)
                        throw Error(m, $"member at bit {bitOffset} (of {bitSize} bits) lies outside its {size}-byte {(union ? "union" : "struct")}");
                    members.Add(new Member(_w.String(_file.NameBytes(m)), type, bitOffset, bitSize, m.Offset));
                    _valueEdges.Add((id, type));
                }
                if (m.HasChildren)
                    r.SkipChildren(m.Sibling, m.SectionOffset);
            }
        }
        bool bitfields = members.Any(m => m.BitSize != 0);
        bool fitsFlag = members.All(m => m.BitOffset < 1 << 24 && m.BitSize < 256);
        var extra = new uint[3 * members.Count];
        for (int i = 0; i < members.Count; i++)
        {
            var m = members[i];
            int type = m.Type;
            uint offset;
            if (bitfields && fitsFlag)
                offset = (uint)m.BitSize << 24 | (uint)m.BitOffset;
            else
            {
                if (m.BitOffset > uint.MaxValue)
                    throw new KvmFormatException(_file.Path, null, $"member at bit {m.BitOffset} of the type at 0x{d.Offset:x} does not fit a BTF offset");
                offset = (uint)m.BitOffset;
                if (m.BitSize != 0)
                    type = NarrowInt(type, m.BitSize, m.Origin);
            }
            extra[3 * i] = m.Name;
            extra[3 * i + 1] = (uint)type;
            extra[3 * i + 2] = offset;
        }
        _w.Define(id, union ? BtfKind.Union : BtfKind.Struct, _w.String(_file.NameBytes(d)), members.Count, bitfields && fitsFlag, size, extra);
    }

    /// <summary>A bitfield of a struct too large for kind-flag offsets, encoded as older BTF did: an int type of the
    /// bitfield's width.</summary>
    private int NarrowInt(int type, int bits, long origin)
    {
        uint encoding = 0, size = 4;
        var stripped = type;
        for (int i = 0; i < MaxTypeDepth; i++)
        {
            if (!_modifiers.ContainsValue(stripped))
                break;
            stripped = _modifiers.First(kv => kv.Value == stripped).Key.Target;
        }
        foreach (var (k, v) in _bases)
        {
            if (v == stripped && k.Kind == BtfKind.Int)
            {
                encoding = k.Word >> 24;
                size = k.Size;
            }
        }
        var key = (BtfKind.Int, "", size, encoding << 24 | (uint)bits);
        if (_bases.TryGetValue(key, out int id))
            return id;
        id = NewId(origin);
        _w.Define(id, BtfKind.Int, 0, 0, false, size, [encoding << 24 | (uint)bits]);
        _bases[key] = id;
        return id;
    }

    /// <summary>A member's bit offset from the start of its parent and its bitfield width (0 when not a bitfield).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (long BitOffset, int BitSize) Placement(in DieInfo m)
    {
        int bitSize = 0;
        if (m.BitSize.IsConstant)
        {
            if (m.BitSize.Raw is 0 or > 255)
                throw Error(m, $"bitfield width {m.BitSize.Raw} is out of range");
            bitSize = (int)m.BitSize.Raw;
        }
        if (m.DataBitOffset.IsConstant)
        {
            if (m.DataBitOffset.Raw > long.MaxValue / 2)
                throw Error(m, $"DW_AT_data_bit_offset {m.DataBitOffset.Raw} is out of range");
            return ((long)m.DataBitOffset.Raw, bitSize);
        }
        long byteOffset = MemberByteOffset(m);
        if (bitSize != 0 && m.BitOffset.IsConstant)
        {
            // DWARF 2/3 bitfields: DW_AT_bit_offset counts from the most significant bit of a storage unit of
            // DW_AT_byte_size bytes (or the type's size) at DW_AT_data_member_location.
            long storage = m.ByteSize.IsConstant ? (long)Math.Min(m.ByteSize.Raw, MaxTypeSize) : StorageSize(m);
            long fromMsb = m.BitOffset.Value;
            long bit = _file.BigEndian ? byteOffset * 8 + fromMsb : byteOffset * 8 + storage * 8 - fromMsb - bitSize;
            if (bit < 0)
                throw Error(m, $"bitfield lies before the start of its parent (bit {bit})");
            return (bit, bitSize);
        }
        return (byteOffset * 8, bitSize);
    }

    private long MemberByteOffset(in DieInfo m)
    {
        var loc = m.MemberLocation;
        switch (loc.Kind)
        {
            case ConstKind.None:
                return 0;
            case ConstKind.Data or ConstKind.Unsigned:
                return loc.Raw <= (ulong)MaxTypeSize ? (long)loc.Raw : throw Error(m, $"member offset {loc.Raw} is out of range");
            case ConstKind.Signed:
                return loc.Value is >= 0 and <= MaxTypeSize ? loc.Value : throw Error(m, $"member offset {loc.Value} is out of range");
            default:
                if (m.LocationExprLength > 0)
                    return Evaluate(m);
                throw Error(m, "member location is neither a constant nor an expression");
        }
    }

    /// <summary>The few DWARF expressions gcc and older compilers write for a member's offset:
    /// DW_OP_plus_uconst N, or DW_OP_constu N / DW_OP_litN followed by DW_OP_plus.</summary>
    private long Evaluate(in DieInfo m)
    {
        var section = m.Unit!.Section;
        var bytes = section.Span.Slice(m.LocationExprStart, m.LocationExprLength);
        Span<long> stack = stackalloc long[8];
        int depth = 1; // the address of the parent, taken as 0
        int pos = 0;
        while (pos < bytes.Length)
        {
            int op = bytes[pos++];
            switch (op)
            {
                case DwOp.PlusUconst:
                    stack[depth - 1] = checked(stack[depth - 1] + (long)Math.Min(Leb.ReadU(bytes, ref pos, section), MaxTypeSize + 1));
                    break;
                case DwOp.Constu when depth < stack.Length:
                    stack[depth++] = (long)Math.Min(Leb.ReadU(bytes, ref pos, section), MaxTypeSize + 1);
                    break;
                case >= DwOp.Lit0 and <= DwOp.Lit31 when depth < stack.Length:
                    stack[depth++] = op - DwOp.Lit0;
                    break;
                case DwOp.Plus when depth >= 2:
                    stack[depth - 2] = checked(stack[depth - 2] + stack[depth - 1]);
                    depth--;
                    break;
                default:
                    throw Error(m, $"member location expression uses DW_OP 0x{op:x2} in a way this reader does not evaluate");
            }
        }
        long result = stack[depth - 1];
        return result is >= 0 and <= MaxTypeSize ? result : throw Error(m, $"member offset {result} is out of range");
    }

    /// <summary>The byte size of a member's type, through typedefs and qualifiers.</summary>
    private long StorageSize(in DieInfo m)
    {
        long die = m.Type;
        for (int i = 0; i < MaxTypeDepth && die >= 0; i++)
        {
            Reader(die, out var t);
            if (t.ByteSize.IsConstant)
                return (long)Math.Min(t.ByteSize.Raw, MaxTypeSize);
            die = t.Type;
        }
        throw Error(m, "bitfield's type has no size");
    }

    /// <summary>Fails when a type contains itself by value: a cycle through typedefs, qualifiers, array elements or
    /// struct and union members (pointers and function prototypes may refer back; values may not).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CheckValueCycles()
    {
        int n = _w.Count + 1;
        var head = new int[n + 1];
        foreach (var (from, _) in _valueEdges)
            head[from + 1]++;
        for (int i = 0; i < n; i++)
            head[i + 1] += head[i];
        var targets = new int[_valueEdges.Count];
        var fill = (int[])head.Clone();
        foreach (var (from, to) in _valueEdges)
            targets[fill[from]++] = to;
        var state = new byte[n]; // 0 new, 1 on the stack, 2 done
        var stack = new Stack<(int Node, int Next)>();
        for (int start = 1; start < n; start++)
        {
            if (state[start] != 0)
                continue;
            stack.Push((start, head[start]));
            state[start] = 1;
            while (stack.Count > 0)
            {
                var (node, next) = stack.Pop();
                if (next < head[node + 1])
                {
                    stack.Push((node, next + 1));
                    int to = targets[next];
                    if (to == 0 || state[to] == 2)
                        continue;
                    if (state[to] == 1)
                    {
                        long die = _origin[to];
                        var unit = _file.UnitOf(die, _file.Units[0], 0);
                        throw unit.Section.Error(unit.Local(die), "type contains itself by value (a cycle of typedefs, qualifiers, arrays or members)");
                    }
                    state[to] = 1;
                    stack.Push((to, head[to]));
                }
                else
                    state[node] = 2;
            }
        }
    }
}
