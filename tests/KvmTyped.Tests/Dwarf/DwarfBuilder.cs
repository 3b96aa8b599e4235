using System.Text;
using KvmTyped.Dwarf;

namespace KvmTyped.Tests.Dwarf;

/// <summary>Builds DWARF sections in code: one abbreviation table, string sections, and units whose entries are
/// written byte by byte through <see cref="DieWriter"/>, with labels for references. For tests of forms and of
/// damaged or hostile input that no compiler writes.</summary>
internal sealed class DwarfBuilder
{
    private readonly List<(int Tag, bool Children, (int Attr, int Form, long Const)[] Specs)> _abbrevs = [];
    private readonly MemoryStream _str = new();
    private readonly Dictionary<string, int> _strOffsets = new(StringComparer.Ordinal);
    private readonly MemoryStream _lineStr = new();
    private readonly List<int> _strIndex = [];
    private readonly List<DieWriter> _units = [];

    /// <summary>Every label of every unit: (unit index, unit-relative offset).</summary>
    internal Dictionary<string, (int Unit, int Offset)> Labels { get; } = new(StringComparer.Ordinal);

    public int Version { get; init; } = 5;
    public bool Is64 { get; init; } = true;
    public bool BigEndian { get; init; }
    public bool Dwarf64 { get; init; }
    public int AddressSize => Is64 ? 8 : 4;
    public int OffsetSize => Dwarf64 ? 8 : 4;

    /// <summary>Bytes appended to <c>.debug_info</c> after the units (to test damaged sections).</summary>
    public byte[] InfoTail { get; set; } = [];

    /// <summary>Replaces the built <c>.debug_str</c> (to test strings without a NUL).</summary>
    public byte[]? StrOverride { get; set; }

    /// <summary>Declares an abbreviation; returns its code.</summary>
    public int Abbrev(int tag, bool children, params (int Attr, int Form)[] specs)
    {
        _abbrevs.Add((tag, children, specs.Select(s => (s.Attr, s.Form, 0L)).ToArray()));
        return _abbrevs.Count;
    }

    /// <summary>Declares an abbreviation with implicit constants; returns its code.</summary>
    public int AbbrevWithConsts(int tag, bool children, params (int Attr, int Form, long Const)[] specs)
    {
        _abbrevs.Add((tag, children, specs));
        return _abbrevs.Count;
    }

    /// <summary>The offset of a string in <c>.debug_str</c>, adding it once.</summary>
    public int Str(string s)
    {
        if (_strOffsets.TryGetValue(s, out int o))
            return o;
        if (_str.Length == 0)
            _str.WriteByte(0);
        o = (int)_str.Length;
        _str.Write(Encoding.UTF8.GetBytes(s + "\0"));
        _strOffsets[s] = o;
        return o;
    }

    /// <summary>The offset of a string in <c>.debug_line_str</c>.</summary>
    public int LineStr(string s)
    {
        int o = (int)_lineStr.Length;
        _lineStr.Write(Encoding.UTF8.GetBytes(s + "\0"));
        return o;
    }

    /// <summary>The index of a string in <c>.debug_str_offsets</c> (DW_FORM_strx*).</summary>
    public int StrIndex(string s)
    {
        _strIndex.Add(Str(s));
        return _strIndex.Count - 1;
    }

    /// <summary>The offset of the first entry of <c>.debug_str_offsets</c> (what DW_AT_str_offsets_base holds).</summary>
    public int StrOffsetsBase => Dwarf64 ? 16 : 8;

    /// <summary>Starts a compile unit (or, with a signature, a DWARF 5 type unit whose type entry carries
    /// <paramref name="typeLabel"/>).</summary>
    public DieWriter Unit(ulong? signature = null, string? typeLabel = null, bool partial = false)
    {
        var u = new DieWriter(this, _units.Count, signature, typeLabel) { Partial = partial };
        _units.Add(u);
        return u;
    }

    internal int HeaderSize(DieWriter u) =>
        (Dwarf64 ? 12 : 4) + 2 + (Version >= 5 ? 2 : 1) + OffsetSize + (u.Signature is null ? 0 : 8 + OffsetSize);

    public byte[] AbbrevSection()
    {
        var b = new List<byte>();
        for (int i = 0; i < _abbrevs.Count; i++)
        {
            var (tag, children, specs) = _abbrevs[i];
            DieWriter.Uleb(b, (ulong)(i + 1));
            DieWriter.Uleb(b, (ulong)tag);
            b.Add((byte)(children ? 1 : 0));
            foreach (var (attr, form, value) in specs)
            {
                DieWriter.Uleb(b, (ulong)attr);
                DieWriter.Uleb(b, (ulong)form);
                if (form == DwForm.ImplicitConst)
                    DieWriter.Sleb(b, value);
            }
            b.Add(0);
            b.Add(0);
        }
        b.Add(0);
        return [.. b];
    }

    public byte[] InfoSection()
    {
        var info = new List<byte>();
        var unitStarts = new List<int>();
        foreach (var u in _units)
        {
            unitStarts.Add(info.Count);
            info.AddRange(u.Header());
            info.AddRange(u.Written);
        }
        foreach (var u in _units)
            u.Resolve(info, unitStarts);
        info.AddRange(InfoTail);
        return [.. info];
    }

    public byte[] StrSection() => StrOverride ?? (_str.Length == 0 ? [0] : _str.ToArray());

    public byte[] StrOffsetsSection()
    {
        var b = new List<byte>();
        var w = new DieWriter(this, -1, null, null);
        if (Dwarf64)
        {
            w.U32(0xffff_ffff).U64((ulong)(4 + OffsetSize * _strIndex.Count));
        }
        else
            w.U32((uint)(4 + OffsetSize * _strIndex.Count));
        w.U16(5).U16(0);
        foreach (var o in _strIndex)
            w.Offset((ulong)o);
        return [.. w.Written];
    }

    /// <summary>The DWARF sections, ready for <see cref="SectionElf.Build"/>.</summary>
    public List<ElfSectionSpec> Sections() =>
    [
        new(".debug_abbrev", SectionElf.ShtProgbits, 0, AbbrevSection()),
        new(".debug_info", SectionElf.ShtProgbits, 0, InfoSection()),
        new(".debug_str", SectionElf.ShtProgbits, 0x30, StrSection()),
        new(".debug_line_str", SectionElf.ShtProgbits, 0x30, _lineStr.Length == 0 ? [0] : _lineStr.ToArray()),
        new(".debug_str_offsets", SectionElf.ShtProgbits, 0, StrOffsetsSection()),
    ];

    /// <summary>An executable ELF file holding the DWARF sections (and any extra sections).</summary>
    public byte[] Elf(params ElfSectionSpec[] extra) =>
        SectionElf.Build(Is64, BigEndian, 2, (ushort)(Is64 ? 62 : 3), [.. Sections(), .. extra]);
}

/// <summary>The entries of one unit, written byte by byte in the builder's byte order and format.</summary>
internal sealed class DieWriter
{
    private readonly DwarfBuilder _b;
    private readonly int _unit;
    private readonly List<byte> _bytes = [];
    private readonly Dictionary<string, int> _labels = new(StringComparer.Ordinal);
    private readonly List<(int At, string Label, int Size, bool Absolute)> _fixups = [];
    private readonly string? _typeLabel;

    internal DieWriter(DwarfBuilder builder, int unit, ulong? signature, string? typeLabel)
    {
        _b = builder;
        _unit = unit;
        Signature = signature;
        _typeLabel = typeLabel;
    }

    public ulong? Signature { get; }

    /// <summary>A DWARF 5 partial unit (DW_UT_partial), as dwz writes for shared types.</summary>
    public bool Partial { get; init; }

    public IReadOnlyList<byte> Written => _bytes;

    /// <summary>The unit-relative offset the next byte will have.</summary>
    public int Here => _unit < 0 ? _bytes.Count : _b.HeaderSize(this) + _bytes.Count;

    /// <summary>Names the position of the next entry, for references.</summary>
    public DieWriter Label(string name)
    {
        _labels[name] = Here;
        _b.Labels[name] = (_unit, Here);
        return this;
    }

    public DieWriter Die(int code) => Uleb((ulong)code);

    public DieWriter End() => U8(0);

    public DieWriter U8(byte v)
    {
        _bytes.Add(v);
        return this;
    }

    public DieWriter U16(ushort v) => Fixed(v, 2);

    public DieWriter U32(uint v) => Fixed(v, 4);

    public DieWriter U64(ulong v) => Fixed(v, 8);

    public DieWriter Fixed(ulong v, int size)
    {
        for (int i = 0; i < size; i++)
        {
            int shift = _b.BigEndian ? 8 * (size - 1 - i) : 8 * i;
            _bytes.Add((byte)(v >> shift));
        }
        return this;
    }

    public DieWriter Offset(ulong v) => Fixed(v, _b.OffsetSize);

    public DieWriter Address(ulong v) => Fixed(v, _b.AddressSize);

    public DieWriter Uleb(ulong v)
    {
        Uleb(_bytes, v);
        return this;
    }

    public DieWriter Sleb(long v)
    {
        Sleb(_bytes, v);
        return this;
    }

    public DieWriter Bytes(params byte[] data)
    {
        _bytes.AddRange(data);
        return this;
    }

    /// <summary>An inline string (DW_FORM_string).</summary>
    public DieWriter CStr(string s) => Bytes(Encoding.UTF8.GetBytes(s + "\0"));

    /// <summary>A DW_FORM_strp to a string of the builder's <c>.debug_str</c>.</summary>
    public DieWriter Strp(string s) => Offset((ulong)_b.Str(s));

    /// <summary>A unit-relative reference of <paramref name="size"/> bytes to a label of this unit.</summary>
    public DieWriter Ref(string label, int size = 4)
    {
        _fixups.Add((_bytes.Count, label, size, false));
        return Fixed(0, size);
    }

    /// <summary>A DW_FORM_ref_addr (section offset) to a label of any unit.</summary>
    public DieWriter RefAddr(string label)
    {
        _fixups.Add((_bytes.Count, label, _b.Version <= 2 ? _b.AddressSize : _b.OffsetSize, true));
        return Fixed(0, _b.Version <= 2 ? _b.AddressSize : _b.OffsetSize);
    }

    internal byte[] Header()
    {
        var h = new DieWriter(_b, -1, null, null);
        int length = _b.HeaderSize(this) - (_b.Dwarf64 ? 12 : 4) + _bytes.Count;
        if (_b.Dwarf64)
            h.U32(0xffff_ffff).U64((ulong)length);
        else
            h.U32((uint)length);
        h.U16((ushort)_b.Version);
        if (_b.Version >= 5)
        {
            h.U8((byte)(Signature is not null ? DwUt.Type : Partial ? DwUt.Partial : DwUt.Compile)).U8((byte)_b.AddressSize).Offset(0);
            if (Signature is { } sig)
                h.U64(sig).Offset((ulong)_labels[_typeLabel!]);
        }
        else
            h.Offset(0).U8((byte)_b.AddressSize);
        return [.. h._bytes];
    }

    internal void Resolve(List<byte> info, List<int> unitStarts)
    {
        int start = unitStarts[_unit] + _b.HeaderSize(this);
        foreach (var (at, label, size, absolute) in _fixups)
        {
            ulong value;
            if (absolute)
            {
                var (unit, offset) = _b.Labels[label];
                value = (ulong)(unitStarts[unit] + offset);
            }
            else
                value = (ulong)_labels[label];
            for (int i = 0; i < size; i++)
            {
                int shift = _b.BigEndian ? 8 * (size - 1 - i) : 8 * i;
                info[start + at + i] = (byte)(value >> shift);
            }
        }
    }

    public static void Uleb(List<byte> b, ulong v)
    {
        do
        {
            byte x = (byte)(v & 0x7f);
            v >>= 7;
            b.Add(v != 0 ? (byte)(x | 0x80) : x);
        }
        while (v != 0);
    }

    public static void Sleb(List<byte> b, long v)
    {
        while (true)
        {
            byte x = (byte)(v & 0x7f);
            v >>= 7;
            bool done = (v == 0 && (x & 0x40) == 0) || (v == -1 && (x & 0x40) != 0);
            b.Add(done ? x : (byte)(x | 0x80));
            if (done)
                return;
        }
    }
}
