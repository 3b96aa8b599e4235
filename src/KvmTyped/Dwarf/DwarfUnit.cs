namespace KvmTyped.Dwarf;

/// <summary>One unit of <c>.debug_info</c> or <c>.debug_types</c>: its header (DWARF 5 section 7.5.1; versions 2–4
/// as in their standards) and, once read, its abbreviation table and string-offsets base.</summary>
internal sealed class DwarfUnit
{
    /// <summary>The section holding the unit.</summary>
    public required DwarfSection Section { get; init; }

    /// <summary>The unit's position in the reader's single offset space over <c>.debug_info</c> and <c>.debug_types</c>.</summary>
    public required long GlobalStart { get; init; }

    /// <summary>The offset of the unit header in its section.</summary>
    public required int Start { get; init; }

    /// <summary>The offset just past the unit in its section.</summary>
    public required int End { get; init; }

    /// <summary>The offset of the unit's first entry in its section.</summary>
    public required int FirstDie { get; init; }

    /// <summary>The DWARF version, 2 to 5.</summary>
    public required int Version { get; init; }

    /// <summary>DW_UT_* (DWARF 5), or the equivalent for older versions.</summary>
    public required int UnitType { get; init; }

    /// <summary>4 for 32-bit DWARF, 8 for 64-bit DWARF.</summary>
    public required int OffsetSize { get; init; }

    /// <summary>The size of a target address.</summary>
    public required int AddressSize { get; init; }

    /// <summary>The offset of the unit's abbreviation table in <c>.debug_abbrev</c>.</summary>
    public required long AbbrevOffset { get; init; }

    /// <summary>A type unit's signature.</summary>
    public ulong TypeSignature { get; init; }

    /// <summary>A type unit's type entry, as an offset from the unit start.</summary>
    public long TypeOffset { get; init; }

    /// <summary>The abbreviation table, once read.</summary>
    public DwarfAbbrevTable? Abbrevs { get; set; }

    /// <summary>DW_AT_str_offsets_base of the unit entry; -1 until the unit entry has been read, then the value or the
    /// default (just past the 32- or 64-bit header of a <c>.debug_str_offsets</c> contribution).</summary>
    public long StrOffsetsBase { get; set; } = -1;

    /// <summary>The global offset of a section offset inside this unit.</summary>
    public long Global(int sectionOffset) => GlobalStart + (sectionOffset - Start);

    /// <summary>The section offset of a global offset inside this unit.</summary>
    public int Local(long global) => (int)(global - GlobalStart) + Start;

    /// <summary>Whether a global offset falls inside this unit's entries.</summary>
    public bool ContainsEntry(long global) => global >= GlobalStart + (FirstDie - Start) && global < GlobalStart + (End - Start);
}
