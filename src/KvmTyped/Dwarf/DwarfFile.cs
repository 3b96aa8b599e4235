using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Dwarf;

/// <summary>The units of a file's DWARF, found by walking the unit headers of <c>.debug_info</c> and
/// <c>.debug_types</c>, with what reading their entries needs: abbreviation tables (parsed once per table and format),
/// the type-unit signatures, and the string sections.</summary>
/// <remarks>Entries are named by a global offset: offsets in <c>.debug_info</c> as they are, offsets in
/// <c>.debug_types</c> after them (plus the length of <c>.debug_info</c>).</remarks>
internal sealed class DwarfFile
{
    /// <summary>The most units a file may have.</summary>
    public const int MaxUnits = 1 << 24;

    private readonly long[] _starts;

    private DwarfFile(DwarfSections sections, List<DwarfUnit> units, Dictionary<ulong, long> signatures)
    {
        Sections = sections;
        Units = units;
        Signatures = signatures;
        _starts = units.Select(u => u.GlobalStart).ToArray();
    }

    /// <summary>The sections.</summary>
    public DwarfSections Sections { get; }

    /// <summary>The units, in global-offset order.</summary>
    public IReadOnlyList<DwarfUnit> Units { get; }

    /// <summary>Type-unit signatures and the global offset of each unit's type entry.</summary>
    public Dictionary<ulong, long> Signatures { get; }

    /// <summary>The file, as named in messages.</summary>
    public string Path => Sections.Path;

    /// <summary>Whether multi-byte fields are big-endian.</summary>
    public bool BigEndian => Sections.BigEndian;

    /// <summary>Reads every unit header.</summary>
    /// <exception cref="KvmFormatException">A header is truncated, runs past its section, or has an unknown version.</exception>
    public static DwarfFile Open(DwarfSections sections)
    {
        var units = new List<DwarfUnit>();
        var signatures = new Dictionary<ulong, long>();
        ReadHeaders(sections.Info, 0, isTypes: false, sections.BigEndian, units, signatures);
        ReadHeaders(sections.Types, sections.Info.Length, isTypes: true, sections.BigEndian, units, signatures);
        return new DwarfFile(sections, units, signatures);
    }

    private static void ReadHeaders(DwarfSection section, long globalBase, bool isTypes, bool be, List<DwarfUnit> units, Dictionary<ulong, long> signatures)
    {
        var span = section.Span;
        int pos = 0;
        while (pos < span.Length)
        {
            int start = pos;
            if (units.Count >= MaxUnits)
                throw section.Error(start, $"more than {MaxUnits} units");
            if (span.Length - pos < 4)
                throw section.Error(start, $"unit header truncated: {span.Length - pos} bytes left in the section");
            ulong length = U32(span, pos, be);
            int offsetSize = 4;
            pos += 4;
            if (length == 0xffff_ffff)
            {
                if (span.Length - pos < 8)
                    throw section.Error(start, "64-bit unit length truncated by the end of the section");
                length = U64(span, pos, be);
                offsetSize = 8;
                pos += 8;
            }
            else if (length >= 0xffff_fff0)
                throw section.Error(start, $"unit length 0x{length:x} is a reserved value");
            if (length > (ulong)(span.Length - pos))
                throw section.Error(start, $"unit length 0x{length:x} runs past the end of the section ({span.Length - pos} bytes left)");
            int end = pos + (int)length;
            int Need(int bytes)
            {
                if (end - pos < bytes)
                    throw section.Error(start, $"unit header runs past the unit's end (length 0x{length:x})");
                int at = pos;
                pos += bytes;
                return at;
            }
            int version = U16(span, Need(2), be);
            if (version is < 2 or > 5)
                throw section.Error(start + offsetSize + (offsetSize == 8 ? 4 : 0), $"unit version {version} is not 2, 3, 4 or 5");
            int unitType, addressSize;
            long abbrevOffset;
            ulong signature = 0;
            long typeOffset = 0;
            if (version >= 5)
            {
                unitType = span[Need(1)];
                addressSize = span[Need(1)];
                abbrevOffset = Offset(span, Need(offsetSize), offsetSize, be);
                if (unitType is DwUt.Type or DwUt.SplitType)
                {
                    signature = U64(span, Need(8), be);
                    typeOffset = Offset(span, Need(offsetSize), offsetSize, be);
                }
                else if (unitType is DwUt.Skeleton or DwUt.SplitCompile)
                    Need(8);
                else if (unitType is not (DwUt.Compile or DwUt.Partial))
                    throw section.Error(start, $"unknown unit type 0x{unitType:x}");
            }
            else
            {
                abbrevOffset = Offset(span, Need(offsetSize), offsetSize, be);
                addressSize = span[Need(1)];
                unitType = DwUt.Compile;
                if (isTypes)
                {
                    unitType = DwUt.Type;
                    signature = U64(span, Need(8), be);
                    typeOffset = Offset(span, Need(offsetSize), offsetSize, be);
                }
            }
            if (addressSize is not (2 or 4 or 8))
                throw section.Error(start, $"unit address size {addressSize} is not 2, 4 or 8");
            var unit = new DwarfUnit
            {
                Section = section,
                GlobalStart = globalBase + start,
                Start = start,
                End = end,
                FirstDie = pos,
                Version = version,
                UnitType = unitType,
                OffsetSize = offsetSize,
                AddressSize = addressSize,
                AbbrevOffset = abbrevOffset,
                TypeSignature = signature,
                TypeOffset = typeOffset,
            };
            if (unitType is DwUt.Type or DwUt.SplitType)
            {
                if (typeOffset < pos - start || typeOffset >= end - start)
                    throw section.Error(start, $"type unit's type offset 0x{typeOffset:x} lies outside its entries");
                signatures.TryAdd(signature, unit.GlobalStart + typeOffset);
            }
            units.Add(unit);
            pos = end;
        }
    }

    /// <summary>The unit whose entries hold global offset <paramref name="global"/>.</summary>
    /// <exception cref="KvmFormatException">No unit holds it.</exception>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public DwarfUnit UnitOf(long global, DwarfUnit from, int referrer)
    {
        if (from.ContainsEntry(global))
            return from;
        int i = Array.BinarySearch(_starts, global);
        if (i < 0)
            i = ~i - 1;
        if (i >= 0 && Units[i].ContainsEntry(global))
            return Units[i];
        throw from.Section.Error(referrer, $"reference to 0x{global:x} does not point into any unit's entries");
    }

    /// <summary>Reads the unit's abbreviation table and unit entry (for DW_AT_str_offsets_base) if not yet done.
    /// Not thread-safe for one unit; different units may be prepared concurrently, each thread with its own
    /// <paramref name="tables"/>.</summary>
    /// <param name="unit">The unit.</param>
    /// <param name="tables">The tables this reader has parsed, by offset and unit format: units sharing a table (type
    /// units of one object, dwz's partial units) parse it once, so the work stays bounded by the sections' sizes.</param>
    public void Prepare(DwarfUnit unit, Dictionary<(long Offset, int OffsetSize, int AddressSize, int Version), DwarfAbbrevTable> tables)
    {
        if (unit.Abbrevs is not null && unit.StrOffsetsBase >= 0)
            return;
        if (unit.Abbrevs is null)
        {
            var key = (unit.AbbrevOffset, unit.OffsetSize, unit.AddressSize, unit.Version);
            if (!tables.TryGetValue(key, out var table))
                tables[key] = table = DwarfAbbrevTable.Parse(Sections.Abbrev, unit.AbbrevOffset, unit.OffsetSize, unit.AddressSize, unit.Version);
            unit.Abbrevs = table;
        }
        if (unit.FirstDie >= unit.End)
        {
            unit.StrOffsetsBase = unit.OffsetSize == 8 ? 16 : 8;
            return;
        }
        // strx in the unit entry itself would need the base first: resolve it after the entry is read.
        unit.StrOffsetsBase = long.MaxValue;
        var r = new DieReader(this, unit, unit.FirstDie);
        r.TryRead(out var root);
        unit.StrOffsetsBase = root.StrOffsetsBase >= 0 ? root.StrOffsetsBase : unit.OffsetSize == 8 ? 16 : 8;
    }

    /// <summary>Drops a unit's reference to its abbreviation table (parsed again if the unit is read by another reader).</summary>
    public static void Release(DwarfUnit unit) => unit.Abbrevs = null;

    /// <summary>The bytes of a name, without its NUL.</summary>
    /// <exception cref="KvmFormatException">The string runs past the end of its section.</exception>
    public ReadOnlySpan<byte> NameBytes(in DieInfo die)
    {
        var section = die.NameSection switch
        {
            NameIn.Str => Sections.Str,
            NameIn.LineStr => Sections.LineStr,
            NameIn.Unit => die.Unit!.Section,
            _ => null,
        };
        if (section is null)
            return default;
        return StringAt(section, die.NameOffset);
    }

    /// <summary>A name as text (UTF-8 decoded).</summary>
    public string Name(in DieInfo die) => die.NameSection == NameIn.None ? "" : Encoding.UTF8.GetString(NameBytes(die));

    /// <summary>The NUL-terminated string at <paramref name="offset"/> of a section, without the NUL.</summary>
    /// <exception cref="KvmFormatException">The offset is outside the section or the string has no NUL before its end.</exception>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static ReadOnlySpan<byte> StringAt(DwarfSection section, long offset)
    {
        var span = section.Span;
        if (offset < 0 || offset >= span.Length)
            throw section.Error(offset, $"string offset 0x{offset:x} is outside the {span.Length}-byte section");
        var rest = span[(int)offset..];
        int nul = rest.IndexOf((byte)0);
        if (nul < 0)
            throw section.Error(offset, "string runs past the end of the section (no NUL)");
        return rest[..nul];
    }

    /// <summary>A 16-bit field in the file's byte order.</summary>
    internal static ushort U16(ReadOnlySpan<byte> s, int at, bool be) => be ? BinaryPrimitives.ReadUInt16BigEndian(s[at..]) : BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);

    /// <summary>A 32-bit field in the file's byte order.</summary>
    internal static uint U32(ReadOnlySpan<byte> s, int at, bool be) => be ? BinaryPrimitives.ReadUInt32BigEndian(s[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);

    /// <summary>A 64-bit field in the file's byte order.</summary>
    internal static ulong U64(ReadOnlySpan<byte> s, int at, bool be) => be ? BinaryPrimitives.ReadUInt64BigEndian(s[at..]) : BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);

    private static long Offset(ReadOnlySpan<byte> s, int at, int size, bool be)
    {
        ulong v = size == 8 ? U64(s, at, be) : U32(s, at, be);
        return v > long.MaxValue ? long.MaxValue : (long)v;
    }
}
