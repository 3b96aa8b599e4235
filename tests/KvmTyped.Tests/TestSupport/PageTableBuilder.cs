namespace KvmTyped.Tests.TestSupport;

/// <summary>TEST HELPER ONLY: writes x86 page tables into a <see cref="SparsePhysicalMemory"/>, allocating table
/// pages from a bump pointer.</summary>
internal sealed class PageTableBuilder
{
    public const ulong P = 1, RW = 2, PS = 0x80, NX = 1UL << 63;

    private readonly SparsePhysicalMemory _memory;
    private ulong _next;

    public PageTableBuilder(SparsePhysicalMemory memory, Mode mode, ulong tablesAt = 0x10_0000)
    {
        _memory = memory;
        PagingMode = mode;
        _next = tablesAt;
        Root = Allocate();
    }

    public enum Mode { X86_64Level4, X86_64Level5, Pae, NonPae }

    public Mode PagingMode { get; }

    public ulong Root { get; }

    /// <summary>Extra bits OR-ed into every directory entry written (e.g. an sme mask or NX).</summary>
    public ulong ExtraDirectoryBits { get; set; }

    public ulong Allocate()
    {
        var page = _next;
        _next += 0x1000;
        _memory.Page(page);
        return page;
    }

    private int Levels => PagingMode switch { Mode.X86_64Level5 => 5, Mode.X86_64Level4 => 4, Mode.Pae => 3, _ => 2 };

    private int Shift(int level) => PagingMode switch
    {
        Mode.NonPae => level == 2 ? 22 : 12,
        _ => 12 + (9 * (level - 1)),
    };

    private ulong Index(ulong va, int level) => PagingMode switch
    {
        Mode.NonPae => (va >> Shift(level)) & 1023,
        Mode.Pae when level == 3 => (va >> 30) & 3,
        _ => (va >> Shift(level)) & 511,
    };

    private int EntrySize => PagingMode == Mode.NonPae ? 4 : 8;

    /// <summary>The physical address of the entry for <paramref name="va"/> at <paramref name="level"/>, creating
    /// the tables above it.</summary>
    public ulong EntryAddress(ulong va, int level)
    {
        var table = Root;
        for (var l = Levels; l > level; l--)
        {
            var at = table + (Index(va, l) * (ulong)EntrySize);
            var entry = Read(at);
            if ((entry & P) == 0)
            {
                var next = Allocate();
                // A PAE PDPTE may carry only the present bit.
                entry = PagingMode == Mode.Pae && l == 3 ? next | P : next | P | RW | ExtraDirectoryBits;
                Write(at, entry);
            }
            table = entry & 0x000f_ffff_ffff_f000UL & ~ExtraDirectoryBits;
        }
        return table + (Index(va, level) * (ulong)EntrySize);
    }

    public void Map(ulong va, ulong pa, int level = 1, ulong extra = 0)
    {
        var flags = P | RW | (level > 1 ? PS : 0) | extra;
        Write(EntryAddress(va, level), pa | flags);
    }

    public void SetEntry(ulong va, int level, ulong value) => Write(EntryAddress(va, level), value);

    public ulong Read(ulong at)
    {
        Span<byte> b = stackalloc byte[8];
        Assert.True(_memory.TryRead(at, b[..EntrySize], out _));
        return EntrySize == 8 ? BitConverter.ToUInt64(b) : BitConverter.ToUInt32(b);
    }

    public void Write(ulong at, ulong value)
    {
        if (EntrySize == 8)
            _memory.WriteU64(at, value);
        else
            _memory.WriteU32(at, checked((uint)value));
    }
}
