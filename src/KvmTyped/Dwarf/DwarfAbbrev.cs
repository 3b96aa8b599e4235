using System.Runtime.CompilerServices;

namespace KvmTyped.Dwarf;

/// <summary>One abbreviation declaration: the tag, whether entries have children, where its attribute specifications
/// lie in its table, and what is fixed about its entries' layout in the unit's format.</summary>
/// <param name="Tag">The DW_TAG of entries.</param>
/// <param name="HasChildren">Whether entries are followed by children (ending with a null entry).</param>
/// <param name="SpecStart">The index of the first attribute specification in the table's arrays.</param>
/// <param name="SpecCount">The number of attribute specifications.</param>
/// <param name="FixedSize">The size of an entry's attributes when every form has a fixed size; -1 otherwise.</param>
/// <param name="SiblingOffset">Where DW_AT_sibling's value lies from the start of the attributes when that is fixed; -1 otherwise.</param>
/// <param name="SiblingIndex">The index (from <paramref name="SpecStart"/>) of DW_AT_sibling; -1 when absent.</param>
internal readonly record struct DwarfAbbrev(int Tag, bool HasChildren, int SpecStart, int SpecCount, int FixedSize, int SiblingOffset, int SiblingIndex);

/// <summary>The abbreviation table of one unit (DWARF 5 section 7.5.3), parsed for the unit's format (offset size,
/// address size, version), which fixes the sizes of forms. Held in a few flat arrays: a kernel's units have some
/// 700,000 declarations between them.</summary>
internal sealed class DwarfAbbrevTable
{
    /// <summary>The most abbreviation declarations one table may hold.</summary>
    public const int MaxAbbrevs = 1 << 20;

    /// <summary>The most attributes one declaration may have.</summary>
    public const int MaxAttributes = 512;

    /// <summary>Attributes numbered above this are stored as it (none of them is one this reader uses).</summary>
    private const int OtherAttribute = 0xffff;

    /// <summary>Codes below this are looked up in an array; others in a dictionary.</summary>
    private const int DenseLimit = 1 << 14;

    private readonly DwarfAbbrev[] _abbrevs;
    private readonly int[] _dense;
    private readonly Dictionary<ulong, int>? _sparse;

    private readonly int[] _constSpecs;
    private readonly long[] _constValues;

    [ThreadStatic]
    private static Scratch? t_scratch;

    private sealed class Scratch
    {
        public ushort[] Attributes = new ushort[1 << 12];
        public ushort[] Forms = new ushort[1 << 12];
        public DwarfAbbrev[] Abbrevs = new DwarfAbbrev[1 << 10];
        public ulong[] Codes = new ulong[1 << 10];
        public readonly List<int> ConstSpecs = [];
        public readonly List<long> ConstValues = [];
    }

    private DwarfAbbrevTable(DwarfAbbrev[] abbrevs, int[] dense, Dictionary<ulong, int>? sparse, ushort[] attributes, ushort[] forms, int[] constSpecs, long[] constValues)
    {
        _abbrevs = abbrevs;
        _dense = dense;
        _sparse = sparse;
        Attributes = attributes;
        Forms = forms;
        _constSpecs = constSpecs;
        _constValues = constValues;
    }

    /// <summary>The attribute of every specification, declaration after declaration.</summary>
    public ushort[] Attributes { get; }

    /// <summary>The form of every specification.</summary>
    public ushort[] Forms { get; }

    /// <summary>The value of DW_FORM_implicit_const specification <paramref name="spec"/> (0 for other forms).</summary>
    public long ImplicitConst(int spec)
    {
        int i = Array.BinarySearch(_constSpecs, spec);
        return i >= 0 ? _constValues[i] : 0;
    }

    /// <summary>The declaration for <paramref name="code"/>; false when the table has none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(ulong code, out DwarfAbbrev abbrev)
    {
        int index = code < (ulong)_dense.Length ? _dense[code] - 1
            : _sparse is not null && _sparse.TryGetValue(code, out int i) ? i : -1;
        if (index < 0)
        {
            abbrev = default;
            return false;
        }
        abbrev = _abbrevs[index];
        return true;
    }

    /// <summary>Parses the table at <paramref name="offset"/> of <c>.debug_abbrev</c>.</summary>
    /// <exception cref="KvmFormatException">The table runs past the section, repeats a code, or names an unknown form.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static DwarfAbbrevTable Parse(DwarfSection section, long offset, int offsetSize, int addressSize, int version)
    {
        var span = section.Span;
        if (offset < 0 || offset >= span.Length)
            throw section.Error(offset, $"abbreviation table offset 0x{offset:x} is outside the {span.Length}-byte section");
        int pos = (int)offset;
        var scratch = t_scratch ??= new Scratch();
        var attrs = scratch.Attributes;
        var forms = scratch.Forms;
        var abbrevs = scratch.Abbrevs;
        var codes = scratch.Codes;
        scratch.ConstSpecs.Clear();
        scratch.ConstValues.Clear();
        int count = 0;
        int specs = 0;
        ulong maxCode = 0;
        try
        {
            while (true)
            {
                int declStart = pos;
                ulong code = Leb.ReadU(span, ref pos, section);
                if (code == 0)
                    break;
                if (count >= MaxAbbrevs)
                    throw section.Error(declStart, $"abbreviation table at 0x{offset:x} has more than {MaxAbbrevs} declarations");
                ulong tag = Leb.ReadU(span, ref pos, section);
                if (pos >= span.Length)
                    throw section.Error(declStart, "abbreviation declaration runs past the end of the section");
                byte children = span[pos++];
                if (children > 1)
                    throw section.Error(pos - 1, $"abbreviation {code}: children flag {children} is neither 0 nor 1");
                int start = specs;
                int fixedSize = 0, siblingOffset = -1, siblingIndex = -1;
                while (true)
                {
                    int specAt = pos;
                    ulong attr = Leb.ReadU(span, ref pos, section);
                    ulong form = Leb.ReadU(span, ref pos, section);
                    if (attr == 0 && form == 0)
                        break;
                    if (specs - start >= MaxAttributes)
                        throw section.Error(declStart, $"abbreviation {code} has more than {MaxAttributes} attributes");
                    int size = form > 0xffff ? DwarfForms.Unknown : DwarfForms.FixedSize((int)form, offsetSize, addressSize, version);
                    if (size == DwarfForms.Unknown)
                        throw section.Error(specAt, $"abbreviation {code}: unknown attribute form 0x{form:x}");
                    if (specs == attrs.Length)
                    {
                        Array.Resize(ref attrs, specs * 2);
                        Array.Resize(ref forms, specs * 2);
                    }
                    if (form == DwForm.ImplicitConst)
                    {
                        scratch.ConstSpecs.Add(specs);
                        scratch.ConstValues.Add(Leb.ReadS(span, ref pos, section));
                    }
                    if (attr == DwAt.Sibling)
                    {
                        siblingIndex = specs - start;
                        if (fixedSize >= 0)
                            siblingOffset = fixedSize;
                    }
                    fixedSize = size >= 0 && fixedSize >= 0 ? fixedSize + size : -1;
                    attrs[specs] = attr > OtherAttribute ? (ushort)OtherAttribute : (ushort)attr;
                    forms[specs] = (ushort)form;
                    specs++;
                }
                maxCode = Math.Max(maxCode, code);
                if (count == abbrevs.Length)
                {
                    Array.Resize(ref abbrevs, count * 2);
                    Array.Resize(ref codes, count * 2);
                }
                abbrevs[count] = new DwarfAbbrev(tag > int.MaxValue ? int.MaxValue : (int)tag, children == 1, start, specs - start, fixedSize, siblingOffset, siblingIndex);
                codes[count++] = code;
            }
            var dense = new int[(int)Math.Min(maxCode + 1, DenseLimit)];
            Dictionary<ulong, int>? sparse = null;
            for (int i = 0; i < count; i++)
            {
                ulong code = codes[i];
                bool duplicate;
                if (code < (ulong)dense.Length)
                {
                    duplicate = dense[code] != 0;
                    dense[code] = i + 1;
                }
                else
                {
                    sparse ??= [];
                    duplicate = !sparse.TryAdd(code, i);
                }
                if (duplicate)
                    throw section.Error(offset, $"abbreviation table at 0x{offset:x} declares code {code} twice");
            }
            return new DwarfAbbrevTable(abbrevs.AsSpan(0, count).ToArray(), dense, sparse, attrs.AsSpan(0, specs).ToArray(),
                forms.AsSpan(0, specs).ToArray(), [.. scratch.ConstSpecs], [.. scratch.ConstValues]);
        }
        finally
        {
            // Keep grown buffers for the next table parsed on this thread.
            scratch.Attributes = attrs;
            scratch.Forms = forms;
            scratch.Abbrevs = abbrevs;
            scratch.Codes = codes;
        }
    }
}

/// <summary>Sizes of attribute forms (DWARF 5 section 7.5.6).</summary>
internal static class DwarfForms
{
    /// <summary>A form whose size depends on its value (LEB128, strings, blocks).</summary>
    public const int Variable = -1;

    /// <summary>A form this reader does not know, so cannot skip.</summary>
    public const int Unknown = -2;

    /// <summary>The size of a form's value in a unit of the given format; <see cref="Variable"/> or <see cref="Unknown"/>.</summary>
    public static int FixedSize(int form, int offsetSize, int addressSize, int version) => form switch
    {
        DwForm.Addr => addressSize,
        DwForm.Data1 or DwForm.Ref1 or DwForm.Flag or DwForm.Strx1 or DwForm.Addrx1 => 1,
        DwForm.Data2 or DwForm.Ref2 or DwForm.Strx2 or DwForm.Addrx2 => 2,
        DwForm.Strx3 or DwForm.Addrx3 => 3,
        DwForm.Data4 or DwForm.Ref4 or DwForm.Strx4 or DwForm.Addrx4 or DwForm.RefSup4 => 4,
        DwForm.Data8 or DwForm.Ref8 or DwForm.RefSig8 or DwForm.RefSup8 => 8,
        DwForm.Data16 => 16,
        DwForm.Strp or DwForm.SecOffset or DwForm.LineStrp or DwForm.StrpSup or DwForm.GnuRefAlt or DwForm.GnuStrpAlt => offsetSize,
        DwForm.RefAddr => version <= 2 ? addressSize : offsetSize,
        DwForm.FlagPresent or DwForm.ImplicitConst => 0,
        DwForm.Block1 or DwForm.Block2 or DwForm.Block4 or DwForm.Block or DwForm.Exprloc or DwForm.String or DwForm.Sdata
            or DwForm.Udata or DwForm.RefUdata or DwForm.Indirect or DwForm.Strx or DwForm.Addrx or DwForm.Loclistx
            or DwForm.Rnglistx or DwForm.GnuAddrIndex or DwForm.GnuStrIndex => Variable,
        _ => Unknown,
    };
}

/// <summary>LEB128 numbers (DWARF 5 section 7.6), bounded in length.</summary>
internal static class Leb
{
    /// <summary>The most bytes one LEB128 number may take (10 carry 64 bits; producers may pad a few more).</summary>
    public const int MaxBytes = 16;

    /// <summary>Reads an unsigned LEB128 number.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong ReadU(ReadOnlySpan<byte> span, ref int pos, DwarfSection section)
    {
        ulong result = 0;
        int shift = 0;
        int start = pos;
        while (true)
        {
            if ((uint)pos >= (uint)span.Length)
                throw section.Error(start, "LEB128 number runs past the end of the section");
            byte b = span[pos++];
            if (shift < 64)
                result |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
                return result;
            shift += 7;
            if (pos - start >= MaxBytes)
                throw section.Error(start, $"LEB128 number longer than {MaxBytes} bytes");
        }
    }

    /// <summary>Reads a signed LEB128 number.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long ReadS(ReadOnlySpan<byte> span, ref int pos, DwarfSection section)
    {
        long result = 0;
        int shift = 0;
        int start = pos;
        byte b;
        while (true)
        {
            if ((uint)pos >= (uint)span.Length)
                throw section.Error(start, "LEB128 number runs past the end of the section");
            b = span[pos++];
            if (shift < 64)
                result |= (long)(b & 0x7f) << shift;
            shift += 7;
            if (b < 0x80)
                break;
            if (pos - start >= MaxBytes)
                throw section.Error(start, $"LEB128 number longer than {MaxBytes} bytes");
        }
        if (shift < 64 && (b & 0x40) != 0)
            result |= -1L << shift;
        return result;
    }
}
