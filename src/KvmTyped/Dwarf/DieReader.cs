using System.Runtime.CompilerServices;

namespace KvmTyped.Dwarf;

/// <summary>Where an entry's name is stored.</summary>
internal enum NameIn : byte
{
    /// <summary>No DW_AT_name.</summary>
    None,

    /// <summary>Inline (DW_FORM_string), in the unit's own section.</summary>
    Unit,

    /// <summary>In <c>.debug_str</c> (DW_FORM_strp, strx*).</summary>
    Str,

    /// <summary>In <c>.debug_line_str</c> (DW_FORM_line_strp).</summary>
    LineStr,

    /// <summary>In a supplementary file (DW_FORM_strp_sup, DW_FORM_GNU_strp_alt), which this reader does not open.</summary>
    Elsewhere,
}

/// <summary>How a constant-valued attribute was given.</summary>
internal enum ConstKind : byte
{
    /// <summary>The attribute is absent.</summary>
    None,

    /// <summary>DW_FORM_data1/2/4/8 (a bit pattern of <see cref="DieInfo"/>'s width; its sign comes from the type).</summary>
    Data,

    /// <summary>DW_FORM_udata (unsigned).</summary>
    Unsigned,

    /// <summary>DW_FORM_sdata or DW_FORM_implicit_const (signed).</summary>
    Signed,

    /// <summary>Not a constant: an expression, a reference or a location list.</summary>
    Other,
}

/// <summary>A constant attribute value: the raw 64 bits, how they were encoded, and their width in bytes for the
/// fixed-size data forms.</summary>
internal struct DwConst
{
    /// <summary>The value's bits as read (a data form's bytes zero-extended, a LEB128's value).</summary>
    public ulong Raw;

    /// <summary>How the value was encoded.</summary>
    public ConstKind Kind;

    /// <summary>The size in bytes of a fixed-size data form (8 for the LEB128 forms).</summary>
    public byte Width;

    /// <summary>Whether the attribute is present as a constant.</summary>
    public readonly bool IsConstant => Kind is ConstKind.Data or ConstKind.Unsigned or ConstKind.Signed;

    /// <summary>The value as a number: DW_FORM_sdata and implicit_const as signed, the data forms and udata as unsigned
    /// (gcc writes a negative constant as sdata and a non-negative one in the smallest data form that holds it); values
    /// past <see cref="long.MaxValue"/> saturate.</summary>
    public readonly long Value => Kind == ConstKind.Signed ? unchecked((long)Raw) : Raw > long.MaxValue ? long.MaxValue : (long)Raw;

    /// <summary>The value sign-extended from its width (for data forms written at the width of a signed type).</summary>
    public readonly long SignExtended => Kind == ConstKind.Data && Width < 8 ? (long)(Raw << (64 - 8 * Width)) >> (64 - 8 * Width) : unchecked((long)Raw);

    /// <summary>Whether the value is -1: signed -1, or all ones in 4 bytes or more (how some producers write the
    /// upper bound of an empty array; 255 in one byte is a real bound).</summary>
    public readonly bool IsMinusOne => Kind switch
    {
        ConstKind.Signed => unchecked((long)Raw) == -1,
        ConstKind.Data => Width >= 8 ? Raw == ulong.MaxValue : Width == 4 && Raw == uint.MaxValue,
        ConstKind.Unsigned => Raw == ulong.MaxValue,
        _ => false,
    };
}

/// <summary>The attributes of one entry that type conversion uses.</summary>
internal struct DieInfo
{
    /// <summary>The unit holding the entry.</summary>
    public DwarfUnit? Unit;

    /// <summary>The entry's DW_TAG.</summary>
    public int Tag;

    /// <summary>Whether children follow the entry.</summary>
    public bool HasChildren;

    /// <summary>The entry's global offset.</summary>
    public long Offset;

    /// <summary>The entry's offset in its section.</summary>
    public int SectionOffset;

    /// <summary>The section offset just past the entry's attributes (its first child, if any).</summary>
    public int AttributesEnd;

    /// <summary>Where DW_AT_name is stored (None when absent).</summary>
    public NameIn NameSection;

    /// <summary>The name's offset in the section <see cref="NameSection"/> names (the unit's own section for inline names).</summary>
    public long NameOffset;

    /// <summary>DW_AT_type as a global offset; -1 when absent.</summary>
    public long Type;

    /// <summary>DW_AT_sibling as a global offset; -1 when absent.</summary>
    public long Sibling;

    /// <summary>DW_AT_signature resolved through the type units; -1 when absent.</summary>
    public long SignatureTarget;

    /// <summary>DW_AT_byte_size.</summary>
    public DwConst ByteSize;

    /// <summary>DW_AT_bit_size (a bitfield's width).</summary>
    public DwConst BitSize;

    /// <summary>DW_AT_bit_offset (DWARF 2/3 bitfields, from the most significant bit).</summary>
    public DwConst BitOffset;

    /// <summary>DW_AT_data_bit_offset (DWARF 4+ bitfields, from the start of the parent).</summary>
    public DwConst DataBitOffset;

    /// <summary>DW_AT_data_member_location when a constant (Kind Other with <see cref="LocationExprLength"/> for an expression).</summary>
    public DwConst MemberLocation;

    /// <summary>DW_AT_upper_bound of a subrange.</summary>
    public DwConst UpperBound;

    /// <summary>DW_AT_lower_bound of a subrange.</summary>
    public DwConst LowerBound;

    /// <summary>DW_AT_count of a subrange.</summary>
    public DwConst Count;

    /// <summary>DW_AT_const_value of an enumerator.</summary>
    public DwConst ConstValue;

    /// <summary>A DW_AT_data_member_location given as an expression: its bytes in the unit's section.</summary>
    public int LocationExprStart;

    /// <summary>The length of that expression (0 when the location is not one).</summary>
    public int LocationExprLength;

    /// <summary>DW_AT_declaration: a declaration, not a definition.</summary>
    public bool Declaration;

    /// <summary>DW_AT_decl_line, or 0.</summary>
    public uint DeclLine;

    /// <summary>DW_AT_encoding of a base type (DW_ATE_*), or -1.</summary>
    public int Encoding;

    /// <summary>DW_AT_str_offsets_base of a unit entry, or -1.</summary>
    public long StrOffsetsBase;

    /// <summary>Whether the entry has a DW_AT_name.</summary>
    public readonly bool HasName => NameSection != NameIn.None;
}

/// <summary>Reads the entries of one unit in order: attribute values by form (DWARF 5 section 7.5.6), every form
/// skippable by its size. Every read is checked against the unit's end.</summary>
internal ref struct DieReader
{
    /// <summary>How deeply entries may nest when children are walked.</summary>
    public const int MaxDepth = 4096;

    /// <summary>How many DW_FORM_indirect links one attribute may follow.</summary>
    private const int MaxIndirect = 4;

    private readonly DwarfFile _file;
    private readonly DwarfUnit _unit;
    private readonly DwarfAbbrevTable _table;
    private readonly DwarfSection _section;
    private readonly ReadOnlySpan<byte> _s;
    private readonly bool _be;
    private int _pos;

    /// <summary>A reader at section offset <paramref name="position"/> of <paramref name="unit"/>, which must be prepared
    /// (<see cref="DwarfFile.Prepare"/>).</summary>
    public DieReader(DwarfFile file, DwarfUnit unit, int position)
    {
        _file = file;
        _unit = unit;
        _table = unit.Abbrevs ?? throw new InvalidOperationException("unit not prepared");
        _section = unit.Section;
        _s = unit.Section.Span[..unit.End];
        _be = file.BigEndian;
        _pos = position;
    }

    /// <summary>The section offset of the next entry.</summary>
    public int Position
    {
        readonly get => _pos;
        set => _pos = value;
    }

    private readonly KvmFormatException Error(int at, string what) => _section.Error(at, what);

    private readonly KvmFormatException Truncated(int at) =>
        Error(at, $"entry runs past the end of its unit (unit at 0x{_unit.Start:x} ends at 0x{_unit.End:x})");

    /// <summary>Reads the next entry's code and abbreviation; false for a null entry (end of a sibling list) or at the
    /// end of the unit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool ReadAbbrev(out DwarfAbbrev abbrev)
    {
        if (_pos >= _s.Length)
        {
            abbrev = default;
            return false;
        }
        int at = _pos;
        ulong code = Uleb();
        if (code == 0)
        {
            abbrev = default;
            return false;
        }
        if (!_table.TryFind(code, out abbrev))
            throw Error(at, $"abbreviation code {code} is not in the unit's table (.debug_abbrev+0x{_unit.AbbrevOffset:x})");
        return true;
    }

    /// <summary>Reads the next entry with the attributes type conversion uses; false for a null entry or the end of the unit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryRead(out DieInfo die)
    {
        die = default;
        int at = _pos;
        if (!ReadAbbrev(out var abbrev))
            return false;
        ReadAttributes(abbrev, at, ref die);
        return true;
    }

    /// <summary>Reads the attributes of an entry whose code has been read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void ReadAttributes(in DwarfAbbrev abbrev, int entryStart, ref DieInfo die)
    {
        die.Unit = _unit;
        die.Tag = abbrev.Tag;
        die.HasChildren = abbrev.HasChildren;
        die.SectionOffset = entryStart;
        die.Offset = _unit.Global(entryStart);
        die.Type = -1;
        die.Sibling = -1;
        die.SignatureTarget = -1;
        die.StrOffsetsBase = -1;
        var attrs = _table.Attributes;
        var forms = _table.Forms;
        int end = abbrev.SpecStart + abbrev.SpecCount;
        for (int i = abbrev.SpecStart; i < end; i++)
        {
            int form = forms[i];
            int valueAt = _pos;
            switch (attrs[i])
            {
                case DwAt.Name:
                    ReadString(form, valueAt, out die.NameSection, out die.NameOffset);
                    break;
                case DwAt.Type:
                    die.Type = ReadReference(form, valueAt);
                    break;
                case DwAt.Sibling:
                    die.Sibling = ReadReference(form, valueAt);
                    break;
                case DwAt.Signature:
                    die.SignatureTarget = ReadReference(form, valueAt);
                    break;
                case DwAt.ByteSize:
                    die.ByteSize = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.BitSize:
                    die.BitSize = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.BitOffset:
                    die.BitOffset = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.DataBitOffset:
                    die.DataBitOffset = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.DataMemberLocation:
                    die.MemberLocation = ReadConstant(form, i, out die.LocationExprStart, out die.LocationExprLength);
                    break;
                case DwAt.UpperBound:
                    die.UpperBound = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.LowerBound:
                    die.LowerBound = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.Count:
                    die.Count = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.ConstValue:
                    die.ConstValue = ReadConstant(form, i, out _, out _);
                    break;
                case DwAt.Declaration:
                    die.Declaration = ReadConstant(form, i, out _, out _) is { IsConstant: true, Raw: not 0 };
                    break;
                case DwAt.DeclLine:
                {
                    var c = ReadConstant(form, i, out _, out _);
                    die.DeclLine = c.IsConstant && c.Raw <= uint.MaxValue ? (uint)c.Raw : 0;
                    break;
                }
                case DwAt.Encoding:
                {
                    var c = ReadConstant(form, i, out _, out _);
                    die.Encoding = c.IsConstant && c.Raw <= int.MaxValue ? (int)c.Raw : -1;
                    break;
                }
                case DwAt.StrOffsetsBase:
                {
                    var c = ReadConstant(form, i, out _, out _);
                    die.StrOffsetsBase = c.Kind != ConstKind.None && c.Raw <= int.MaxValue ? (long)c.Raw : -1;
                    break;
                }
                default:
                    Skip(form, valueAt);
                    break;
            }
        }
        die.AttributesEnd = _pos;
    }

    /// <summary>Skips the attributes of an entry whose code has been read, returning DW_AT_sibling (global) or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long SkipAttributes(in DwarfAbbrev abbrev)
    {
        if (abbrev.FixedSize >= 0)
        {
            int start = _pos;
            if (_s.Length - start < abbrev.FixedSize)
                throw Truncated(start);
            if (abbrev.SiblingOffset < 0)
            {
                _pos = start + abbrev.FixedSize;
                return -1;
            }
            int at = start + abbrev.SiblingOffset;
            _pos = at;
            long sibling = ReadReference(_table.Forms[abbrev.SpecStart + abbrev.SiblingIndex], at);
            _pos = start + abbrev.FixedSize;
            return sibling;
        }
        long result = -1;
        var forms = _table.Forms;
        int end = abbrev.SpecStart + abbrev.SpecCount;
        int sib = abbrev.SiblingIndex < 0 ? -1 : abbrev.SpecStart + abbrev.SiblingIndex;
        for (int i = abbrev.SpecStart; i < end; i++)
        {
            int at = _pos;
            if (i == sib)
                result = ReadReference(forms[i], at);
            else
                Skip(forms[i], at);
        }
        return result;
    }

    /// <summary>Skips the children of the entry just read (its attributes consumed): to DW_AT_sibling when given and
    /// sane, otherwise by walking them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void SkipChildren(long sibling, int entryStart)
    {
        if (sibling >= 0)
        {
            long end = _unit.Global(_s.Length);
            if (sibling <= _unit.Global(_pos) || sibling > end)
                throw Error(entryStart, $"DW_AT_sibling 0x{sibling:x} does not point past the entry's attributes within its unit");
            _pos = _unit.Local(sibling);
            return;
        }
        int depth = 1;
        while (depth > 0)
        {
            if (_pos >= _s.Length)
                return; // a unit may end without its closing null entries
            int at = _pos;
            if (!ReadAbbrev(out var a))
            {
                depth--;
                continue;
            }
            long s = SkipAttributes(a);
            if (!a.HasChildren)
                continue;
            if (s >= 0)
            {
                if (s <= _unit.Global(_pos) || s > _unit.Global(_s.Length))
                    throw Error(at, $"DW_AT_sibling 0x{s:x} does not point past the entry's attributes within its unit");
                _pos = _unit.Local(s);
            }
            else if (++depth > MaxDepth)
                throw Error(at, $"entries nest deeper than {MaxDepth}");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Uleb()
    {
        if (_pos < _s.Length && _s[_pos] < 0x80)
            return _s[_pos++];
        return Leb.ReadU(_s, ref _pos, _section);
    }

    private long Sleb() => Leb.ReadS(_s, ref _pos, _section);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Take(int n, int at)
    {
        int p = _pos;
        if (_s.Length - p < n)
            throw Truncated(at);
        _pos = p + n;
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private ulong Fixed(int n, int at)
    {
        int p = Take(n, at);
        return n switch
        {
            1 => _s[p],
            2 => DwarfFile.U16(_s, p, _be),
            3 => _be ? (ulong)_s[p] << 16 | (ulong)_s[p + 1] << 8 | _s[p + 2] : _s[p] | (ulong)_s[p + 1] << 8 | (ulong)_s[p + 2] << 16,
            4 => DwarfFile.U32(_s, p, _be),
            _ => DwarfFile.U64(_s, p, _be),
        };
    }

    private int ResolveIndirect(int form, int at)
    {
        for (int i = 0; form == DwForm.Indirect; i++)
        {
            if (i >= MaxIndirect)
                throw Error(at, $"DW_FORM_indirect chained more than {MaxIndirect} times");
            ulong f = Uleb();
            form = f > int.MaxValue ? int.MaxValue : (int)f;
            if (form == DwForm.ImplicitConst)
                throw Error(at, "DW_FORM_indirect names DW_FORM_implicit_const, whose value only an abbreviation can hold");
        }
        return form;
    }

    /// <summary>Skips one attribute value of <paramref name="form"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Skip(int form, int at)
    {
        switch (form)
        {
            case DwForm.FlagPresent or DwForm.ImplicitConst:
                return;
            case DwForm.Data1 or DwForm.Ref1 or DwForm.Flag or DwForm.Strx1 or DwForm.Addrx1:
                Take(1, at);
                return;
            case DwForm.Data2 or DwForm.Ref2 or DwForm.Strx2 or DwForm.Addrx2:
                Take(2, at);
                return;
            case DwForm.Strx3 or DwForm.Addrx3:
                Take(3, at);
                return;
            case DwForm.Data4 or DwForm.Ref4 or DwForm.Strx4 or DwForm.Addrx4 or DwForm.RefSup4:
                Take(4, at);
                return;
            case DwForm.Data8 or DwForm.Ref8 or DwForm.RefSig8 or DwForm.RefSup8:
                Take(8, at);
                return;
            case DwForm.Data16:
                Take(16, at);
                return;
            case DwForm.Strp or DwForm.SecOffset or DwForm.LineStrp or DwForm.StrpSup or DwForm.GnuRefAlt or DwForm.GnuStrpAlt:
                Take(_unit.OffsetSize, at);
                return;
            case DwForm.Addr:
                Take(_unit.AddressSize, at);
                return;
            case DwForm.RefAddr:
                Take(_unit.Version <= 2 ? _unit.AddressSize : _unit.OffsetSize, at);
                return;
            case DwForm.Sdata or DwForm.Udata or DwForm.RefUdata or DwForm.Strx or DwForm.Addrx or DwForm.Loclistx
                or DwForm.Rnglistx or DwForm.GnuAddrIndex or DwForm.GnuStrIndex:
                Uleb();
                return;
            case DwForm.String:
            {
                int nul = _s[_pos..].IndexOf((byte)0);
                if (nul < 0)
                    throw Error(at, "inline string runs past the end of its unit (no NUL)");
                _pos += nul + 1;
                return;
            }
            case DwForm.Block1:
                Take((int)Fixed(1, at), at);
                return;
            case DwForm.Block2:
                Take((int)Fixed(2, at), at);
                return;
            case DwForm.Block4:
                TakeBlock(Fixed(4, at), at);
                return;
            case DwForm.Block or DwForm.Exprloc:
                TakeBlock(Uleb(), at);
                return;
            case DwForm.Indirect:
                Skip(ResolveIndirect(form, at), at);
                return;
            default:
                throw Error(at, $"unknown attribute form 0x{form:x}");
        }
    }

    private int TakeBlock(ulong length, int at)
    {
        if (length > (ulong)(_s.Length - _pos))
            throw Error(at, $"block of {length} bytes runs past the end of its unit");
        return Take((int)length, at);
    }

    /// <summary>Reads a constant; for an expression block (exprloc or block forms) its position and length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private DwConst ReadConstant(int form, int spec, out int blockStart, out int blockLength)
    {
        int at = _pos;
        blockStart = 0;
        blockLength = 0;
        form = ResolveIndirect(form, at);
        switch (form)
        {
            case DwForm.Data1 or DwForm.Flag:
                return new DwConst { Raw = Fixed(1, at), Kind = ConstKind.Data, Width = 1 };
            case DwForm.Data2:
                return new DwConst { Raw = Fixed(2, at), Kind = ConstKind.Data, Width = 2 };
            case DwForm.Data4:
                return new DwConst { Raw = Fixed(4, at), Kind = ConstKind.Data, Width = 4 };
            case DwForm.Data8:
                return new DwConst { Raw = Fixed(8, at), Kind = ConstKind.Data, Width = 8 };
            case DwForm.Data16:
            {
                // Only the low 64 bits are kept, which is exact when the high bits only extend them.
                int p = Take(16, at);
                ulong lo = _be ? DwarfFile.U64(_s, p + 8, true) : DwarfFile.U64(_s, p, false);
                return new DwConst { Raw = lo, Kind = ConstKind.Data, Width = 8 };
            }
            case DwForm.Udata:
                return new DwConst { Raw = Uleb(), Kind = ConstKind.Unsigned, Width = 8 };
            case DwForm.Sdata:
                return new DwConst { Raw = unchecked((ulong)Sleb()), Kind = ConstKind.Signed, Width = 8 };
            case DwForm.ImplicitConst:
                return new DwConst { Raw = unchecked((ulong)_table.ImplicitConst(spec)), Kind = ConstKind.Signed, Width = 8 };
            case DwForm.FlagPresent:
                return new DwConst { Raw = 1, Kind = ConstKind.Unsigned, Width = 1 };
            case DwForm.Exprloc or DwForm.Block:
                blockLength = (int)Math.Min(Uleb(), int.MaxValue);
                blockStart = TakeBlock((ulong)blockLength, at);
                return new DwConst { Kind = ConstKind.Other };
            case DwForm.Block1:
                blockLength = (int)Fixed(1, at);
                blockStart = TakeBlock((ulong)blockLength, at);
                return new DwConst { Kind = ConstKind.Other };
            case DwForm.Block2:
                blockLength = (int)Fixed(2, at);
                blockStart = TakeBlock((ulong)blockLength, at);
                return new DwConst { Kind = ConstKind.Other };
            case DwForm.SecOffset:
                // DWARF 4+: a location or range list, or (DW_AT_str_offsets_base) a section offset.
                return new DwConst { Raw = Fixed(_unit.OffsetSize, at), Kind = ConstKind.Other };
            default:
                Skip(form, at);
                return new DwConst { Kind = ConstKind.Other };
        }
    }

    /// <summary>Reads a reference as a global offset (ref_sig8 resolved through the type units).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long ReadReference(int form, int at)
    {
        form = ResolveIndirect(form, at);
        ulong value;
        switch (form)
        {
            case DwForm.Ref1:
                value = Fixed(1, at);
                break;
            case DwForm.Ref2:
                value = Fixed(2, at);
                break;
            case DwForm.Ref4:
                value = Fixed(4, at);
                break;
            case DwForm.Ref8:
                value = Fixed(8, at);
                break;
            case DwForm.RefUdata:
                value = Uleb();
                break;
            case DwForm.RefAddr:
            {
                ulong target = Fixed(_unit.Version <= 2 ? _unit.AddressSize : _unit.OffsetSize, at);
                if (target >= (ulong)_file.Sections.Info.Length)
                    throw Error(at, $"DW_FORM_ref_addr 0x{target:x} is outside .debug_info");
                return (long)target;
            }
            case DwForm.RefSig8:
            {
                ulong sig = Fixed(8, at);
                return _file.Signatures.TryGetValue(sig, out long t) ? t
                    : throw Error(at, $"DW_FORM_ref_sig8 0x{sig:x16} names no type unit in the file");
            }
            case DwForm.GnuRefAlt or DwForm.RefSup4 or DwForm.RefSup8:
                throw Error(at, $"reference form 0x{form:x} points into a supplementary (dwz) file, which this reader does not open");
            default:
                throw Error(at, $"attribute form 0x{form:x} is not a reference");
        }
        if (value >= (ulong)(_unit.End - _unit.Start))
            throw Error(at, $"reference 0x{value:x} lies outside its unit (0x{_unit.End - _unit.Start:x} bytes)");
        return _unit.GlobalStart + (long)value;
    }

    /// <summary>Reads a string attribute: where the string lies (not the string itself).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ReadString(int form, int at, out NameIn where, out long offset)
    {
        form = ResolveIndirect(form, at);
        switch (form)
        {
            case DwForm.String:
                where = NameIn.Unit;
                offset = _pos;
                Skip(form, at);
                return;
            case DwForm.Strp:
                where = NameIn.Str;
                offset = (long)Math.Min(Fixed(_unit.OffsetSize, at), long.MaxValue);
                return;
            case DwForm.LineStrp:
                where = NameIn.LineStr;
                offset = (long)Math.Min(Fixed(_unit.OffsetSize, at), long.MaxValue);
                return;
            case DwForm.Strx or DwForm.GnuStrIndex:
                where = NameIn.Str;
                offset = StringIndex(Uleb(), at);
                return;
            case DwForm.Strx1 or DwForm.Strx2 or DwForm.Strx3 or DwForm.Strx4:
                where = NameIn.Str;
                offset = StringIndex(Fixed(form - DwForm.Strx1 + 1, at), at);
                return;
            case DwForm.StrpSup or DwForm.GnuStrpAlt:
                where = NameIn.Elsewhere;
                offset = (long)Math.Min(Fixed(_unit.OffsetSize, at), long.MaxValue);
                return;
            default:
                throw Error(at, $"attribute form 0x{form:x} is not a string form");
        }
    }

    /// <summary>The <c>.debug_str</c> offset of string index <paramref name="index"/> (DW_FORM_strx*).</summary>
    private readonly long StringIndex(ulong index, int at)
    {
        long strBase = _unit.StrOffsetsBase;
        if (strBase == long.MaxValue)
            return -1; // the unit entry itself, read before its DW_AT_str_offsets_base is known
        var offsets = _file.Sections.StrOffsets;
        int size = _unit.OffsetSize;
        if (index > (ulong)offsets.Length / (ulong)size || strBase + (long)index * size + size > offsets.Length)
            throw Error(at, $"string index {index} lies past the end of .debug_str_offsets ({offsets.Length} bytes, base 0x{strBase:x})");
        int p = (int)(strBase + (long)index * size);
        ulong value = size == 8 ? DwarfFile.U64(offsets.Span, p, _be) : DwarfFile.U32(offsets.Span, p, _be);
        return (long)Math.Min(value, long.MaxValue);
    }
}
