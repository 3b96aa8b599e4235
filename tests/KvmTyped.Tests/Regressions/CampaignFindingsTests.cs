using System.Diagnostics.CodeAnalysis;
using System.Text;
using KvmTyped.Arch.X86;
using KvmTyped.Formats;
using KvmTyped.Formats.Elf;
using KvmTyped.IO;
using KvmTyped.Linux;
using KvmTyped.Tests.Linux;
using KvmTyped.Tests.TestSupport;

namespace KvmTyped.Tests.Regressions;

/// <summary>The library's side of the mutation campaign's findings (issue 15): work and memory bounded by what the
/// input holds, not by what it claims.</summary>
public class CampaignFindingsTests
{
    /// <summary>Counts reads, forwarding everything else.</summary>
    private sealed class CountingMemory(IPhysicalMemory inner) : IPhysicalMemory
    {
        public int Reads { get; private set; }

        public string FormatName => inner.FormatName;

        public IReadOnlyList<PhysicalRange> Ranges => inner.Ranges;

        public IReadOnlyList<PhysicalRange> StoredRanges => inner.StoredRanges;

        public bool IsWritable => false;

        public bool TryRead(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            Reads++;
            return inner.TryRead(address, destination, out failure);
        }

        public void Write(ulong address, ReadOnlySpan<byte> source) => throw new NotSupportedException();

        public void Dispose() => inner.Dispose();
    }

    [Theory]
    [InlineData(true, (ushort)62, 32UL << 40, 0x20_0000UL)] // x86-64 core claiming 32 TiB, 2 MiB banner alignment
    [InlineData(true, (ushort)3, 64UL << 30, 0x1000UL)]     // QEMU's ELF64 EM_386 core claiming 64 GiB, 4 KiB alignment
    public void Finding3_the_banner_search_reads_only_what_the_file_stores(bool is64, ushort machine, ulong claimed, ulong alignment)
    {
        using var dir = new TempDir();
        var data = new byte[8192];
        var core = new ElfWriter { Is64 = is64, Machine = machine, Type = 4 }.AddLoad(0, 0, data, memsz: claimed);
        var path = dir.File("vmcore", core.Build());
        using var memory = new CountingMemory(new ElfCoreMemory(ElfImage.Parse(RandomAccessFile.Open(path, writable: false))));
        Assert.Equal(claimed, memory.Ranges.Aggregate(0UL, (sum, r) => sum + r.Length));
        Assert.Equal(8192UL, memory.StoredRanges.Aggregate(0UL, (sum, r) => sum + r.Length));
        Assert.Empty(KernelLayout.BannerCandidates(memory, 0xffffffff82161900, alignment));
        Assert.True(memory.Reads <= 8192 / (int)alignment + 1, $"{memory.Reads} reads");
    }

    [Fact]
    public void Finding3_a_truncated_file_stores_only_its_bytes()
    {
        using var dir = new TempDir();
        var built = new ElfWriter().AddLoad(0x1000, 0x1000, new byte[0x3000]).Build();
        var path = dir.File("vmcore", built[..^0x2000]); // the segment's last two pages are cut off
        using var memory = new ElfCoreMemory(ElfImage.Parse(RandomAccessFile.Open(path, writable: false)));
        Assert.Equal(0x3000UL, memory.Ranges.Single().Length);
        Assert.Equal(new PhysicalRange(0x1000, 0x1000, "vmcore"), memory.StoredRanges.Single());
    }

    [Fact]
    public void Finding6_a_string_is_read_whole_when_the_rest_of_its_page_is_not_readable()
    {
        var bytes = Encoding.ASCII.GetBytes("Linux version 6.1\0");
        const ulong start = 0x1f00, readableEnd = 0x1f00 + 18; // the NUL is the last readable byte
        var reads = 0;
        bool Read(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
        {
            reads++;
            if (address < start || address + (ulong)destination.Length > readableEnd)
            {
                failure = $"0x{address:x}: not in the dump";
                return false;
            }
            bytes.AsSpan((int)(address - start), destination.Length).CopyTo(destination);
            failure = null;
            return true;
        }
        Assert.True(CStringReader.TryRead(Read, start, 4096, out var got, out var why), why);
        Assert.Equal("Linux version 6.1", Encoding.ASCII.GetString(got));
        Assert.True(reads < 40, $"{reads} reads");
        // A string whose NUL is not readable still fails, naming the address.
        Assert.False(CStringReader.TryRead(Read, start + 3, 14, out got, out why) && got.Length == 15);
        Assert.False(CStringReader.TryRead((ulong a, Span<byte> d, [NotNullWhen(false)] out string? f) => { f = "unreadable"; return false; }, 0x1000, 16, out got, out why));
        Assert.Empty(got);
    }

    [Fact]
    public void Symbol_texts_are_capped_in_name_length()
    {
        using var dir = new TempDir();
        var path = dir.Text("kallsyms", "ffffffff81000000 T _text\nffffffff81000010 T " + new string('a', 5000) + "\n");
        using var table = KvmTyped.Symbols.TextSymbolTable.OpenKallsyms(path);
        var e = Assert.Throws<KvmFormatException>(() => table.TryLookup("_text", out _));
        Assert.Contains("line 2: a symbol name of 5000 bytes, longer than 4096", e.Message, StringComparison.Ordinal);
    }

    private const ulong Base = 0x10000, Prb = 0x10100;

    private const string RingInfo = PrintkRingInfo.Debian61Amd64;

    [Theory]
    [InlineData(22u, 6u)]  // 4 Mi descriptors: 96 MiB of descriptors and 352 MiB of infos claimed
    [InlineData(2u, 27u)]  // a 128 MiB text ring claimed
    public void Finding7_the_log_allocates_no_more_than_the_dump_holds(uint countBits, uint sizeBits)
    {
        var m = new FlatKernelMemory(DataModel.LP64, Base, 0x4000);
        m.U64(Base, Prb);
        m.U32(Prb, countBits);
        m.U64(Prb + 8, Base + 0x400);
        m.U64(Prb + 16, Base + 0x800);
        m.U32(Prb + 48, sizeBits);
        m.U64(Prb + 56, Base + 0x1000);
        var info = VmcoreInfo.Parse(Encoding.ASCII.GetBytes(RingInfo));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.ThrowsAny<KvmException>(() => KernelLog.Read(m, info));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated before: {e.Message}");
        Assert.Contains("not mapped", e.Message, StringComparison.Ordinal);
    }
}
