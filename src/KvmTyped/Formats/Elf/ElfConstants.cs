namespace KvmTyped.Formats.Elf;

/// <summary>ELF constants used here (System V gABI, elf.h).</summary>
internal static class ElfConstants
{
    public const byte ElfClass32 = 1;
    public const byte ElfClass64 = 2;
    public const byte ElfData2Lsb = 1;
    public const byte ElfData2Msb = 2;
    public const ushort EtCore = 4;
    public const ushort Em386 = 3;
    public const ushort EmX86_64 = 62;
    /// <summary>EM_AARCH64.</summary>
    public const ushort EmAarch64 = 183;
    public const uint PtLoad = 1;
    public const uint PtNote = 4;
    public const uint ShtSymtab = 2;
    public const uint ShtStrtab = 3;
    public const uint ShtNobits = 8;
    public const ulong ShfWrite = 0x1;
    public const ulong ShfAlloc = 0x2;
    public const ulong ShfExecinstr = 0x4;
    public const ushort ShnUndef = 0;
    public const ushort ShnAbs = 0xfff1;
    public const ushort ShnCommon = 0xfff2;
    public const ushort ShnXindex = 0xffff;
    public const ushort PnXnum = 0xffff;
    public const byte SttSection = 3;
    public const byte SttFile = 4;
    public const byte StbLocal = 0;
    public const byte StbWeak = 2;
}
