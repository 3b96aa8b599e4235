using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvmTyped.Btf;
using KvmTyped.Formats.Kdump;
using KvmTyped.TestSupport;
using KvmTyped.Translation;
using Xunit.Abstractions;
using KvmTyped.Formats;

namespace KvmTyped.EndToEnd.Tests.Arm64;

/// <summary>The arm64 fixture (Debian 6.1.0-50-arm64, 4 KiB pages, 48-bit VAs, QEMU kdump-zlib with 64 KiB blocks)
/// read through <see cref="KdumpFile"/> and translated by <see cref="Arm64PageTables"/>, against its truth.json.</summary>
public sealed class Arm64TranslationTests : IClassFixture<Arm64TranslationTests.Dump>
{
    private const string Folder = "arm64";
    private readonly Dump _dump;
    private readonly ITestOutputHelper _output;

    public Arm64TranslationTests(Dump dump, ITestOutputHelper output)
    {
        _dump = dump;
        _output = output;
    }

    /// <summary>The dump opened once, with what the tests derive from its VMCOREINFO and the System.map.</summary>
    public sealed class Dump : IDisposable
    {
        public Dump()
        {
            File = KdumpFile.Open(Fixtures.Get($"{Folder}/dump.kdump-zlib"));
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(Path.Combine(Fixtures.Root, Folder, "truth.json")));
            Truth = doc.RootElement.Clone();
            Map = ReadSystemMap(Fixtures.Get($"{Folder}/System.map-6.1.0-50-arm64"));
            var info = File.VmcoreInfo ?? throw new InvalidOperationException("the arm64 dump has no VMCOREINFO");
            KaslrOffset = info.KernelOffset ?? throw new InvalidOperationException("no KERNELOFFSET");
            KimageVoffset = VmcoreNumber.Get(info, "kimage_voffset") ?? throw new InvalidOperationException("no NUMBER(kimage_voffset)");
            PhysOffset = VmcoreNumber.Get(info, "PHYS_OFFSET") ?? throw new InvalidOperationException("no NUMBER(PHYS_OFFSET)");
            VaBits = checked((int)(VmcoreNumber.Get(info, "VA_BITS") ?? throw new InvalidOperationException("no NUMBER(VA_BITS)")));
            var t1sz = VmcoreNumber.Get(info, "TCR_EL1_T1SZ") ?? throw new InvalidOperationException("no NUMBER(TCR_EL1_T1SZ)");
            RunningVaBits = 64 - checked((int)t1sz);
            PageOffset = ~0UL << VaBits;
            SwapperPgDir = Runtime("swapper_pg_dir");
            Kernel = new Arm64PageTables(File, SwapperPgDir - KimageVoffset, Arm64Granule.Size4K, RunningVaBits, Arm64AddressHalf.Kernel);
        }

        internal KdumpFile File { get; }

        public JsonElement Truth { get; }

        public IReadOnlyDictionary<string, ulong> Map { get; }

        public ulong KaslrOffset { get; }

        public ulong KimageVoffset { get; }

        public ulong PhysOffset { get; }

        public int VaBits { get; }

        public int RunningVaBits { get; }

        /// <summary>PAGE_OFFSET of Linux 5.4 on: −2^VA_BITS, the start of the linear map.</summary>
        public ulong PageOffset { get; }

        public ulong SwapperPgDir { get; }

        internal Arm64PageTables Kernel { get; }

        /// <summary>A System.map symbol moved by the KASLR offset.</summary>
        public ulong Runtime(string name) => Map[name] + KaslrOffset;

        public ulong ReadU64(ulong va)
        {
            Span<byte> b = stackalloc byte[8];
            Kernel.ReadVirtual(File, va, b);
            return BinaryPrimitives.ReadUInt64LittleEndian(b);
        }

        public void Dispose() => File.Dispose();

        private static Dictionary<string, ulong> ReadSystemMap(string path)
        {
            var map = new Dictionary<string, ulong>(StringComparer.Ordinal);
            foreach (var line in System.IO.File.ReadLines(path))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 3)
                    map.TryAdd(parts[2], ulong.Parse(parts[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
            }
            return map;
        }
    }

    private static ulong Hex(string s) =>
        ulong.Parse(s.Split(' ')[0].AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    private JsonElement Truth => _dump.Truth;

    [Fact]
    public void Kdump_reader_reads_64k_blocks_of_a_4k_page_kernel()
    {
        var header = Truth.GetProperty("dump");
        Assert.Equal(header.GetProperty("block_size").GetInt32(), _dump.File.PageSize);
        Assert.Equal(65536, _dump.File.PageSize);
        Assert.Equal(header.GetProperty("max_mapnr").GetUInt64(), _dump.File.MaxMapnr);
        Assert.Equal(4096, _dump.File.VmcoreInfo!.PageSize);

        // The labmarker pages at the physical addresses the guest reported (/proc/self/pagemap), 4 KiB pages inside
        // 64 KiB blocks: each holds its pattern, repeated from the first byte.
        var marker = Truth.GetProperty("labmarker");
        foreach (var (page, pattern) in new[] { ("page0", "pattern_page0"), ("page1", "pattern_page1") })
        {
            var pa = Hex(marker.GetProperty(page).GetProperty("pa").GetString()!);
            Assert.NotEqual(0UL, pa & 0xffff);
            var bytes = new byte[4096];
            Assert.True(_dump.File.TryRead(pa, bytes, out var f), f);
            AssertRepeats(marker.GetProperty(pattern).GetString()!, bytes);
        }

        // The VMCOREINFO text in memory (its buffer's linear address is vmcoreinfo_data's value, read in the guest)
        // equals the text the kdump header carries, and a read across a 64 KiB block boundary joins the blocks.
        var data = Hex(Truth.GetProperty("kernel_values_runtime").GetProperty("vmcoreinfo_data").GetProperty("value_native_long").GetString()!);
        var text = _dump.File.VmcoreInfoBytes.ToArray();
        var inMemory = new byte[text.Length];
        Assert.True(_dump.File.TryRead(data - _dump.PageOffset + _dump.PhysOffset, inMemory, out var failure), failure);
        Assert.Equal(Encoding.ASCII.GetString(text), Encoding.ASCII.GetString(inMemory));
        Assert.StartsWith("OSRELEASE=6.1.0-50-arm64\n", Encoding.ASCII.GetString(inMemory), StringComparison.Ordinal);
        var across = new byte[0x20];
        var oneRead = new byte[0x20];
        Assert.True(_dump.File.TryRead(0x4841_fff0UL, across, out failure), failure);
        Assert.True(_dump.File.TryRead(0x4841_fff0UL, oneRead.AsSpan(0, 0x10), out failure) && _dump.File.TryRead(0x4842_0000UL, oneRead.AsSpan(0x10), out failure), failure);
        Assert.Equal(oneRead, across);
    }

    [Fact]
    public void Vmcoreinfo_numbers_are_read_in_the_hex_form_arm64_writes()
    {
        var info = _dump.File.VmcoreInfo!;
        // VmcoreInfo.Number reads signed decimal only; the arm64 hex values need VmcoreNumber.
        Assert.Null(info.Number("kimage_voffset"));
        var values = Truth.GetProperty("kernel_values_runtime");
        Assert.Equal(Hex(values.GetProperty("kimage_voffset").GetProperty("value_native_long").GetString()!), _dump.KimageVoffset);
        Assert.Equal(Hex(values.GetProperty("memstart_addr").GetProperty("value_native_long").GetString()!), _dump.PhysOffset);
        Assert.Equal(0xffff_0000_0000_0000UL, VmcoreNumber.Get(info, "KERNELPACMASK"));
        Assert.Equal(48, _dump.VaBits);
        Assert.Equal(48, _dump.RunningVaBits);
        Assert.Equal(Hex(Truth.GetProperty("kaslr_offset").GetString()!), _dump.KaslrOffset);
        // System.map + KASLR agrees with the kernel's own SYMBOL(swapper_pg_dir) and the guest's kallsyms.
        Assert.Equal(info.Symbol("swapper_pg_dir"), _dump.SwapperPgDir);
        Assert.Equal(Hex(Truth.GetProperty("kernel_symbols_runtime").GetProperty("swapper_pg_dir").GetString()!), _dump.SwapperPgDir);
        Assert.Equal(0x4185_3000UL, _dump.SwapperPgDir - _dump.KimageVoffset);
    }

    [Fact]
    public void Linux_banner_reads_through_swapper_pg_dir()
    {
        var banner = Truth.GetProperty("linux_banner").GetString()!.TrimEnd('\n') + "\n";
        var va = _dump.Runtime("linux_banner");
        var bytes = new byte[banner.Length + 1];
        Assert.True(_dump.Kernel.TryReadVirtual(_dump.File, va, bytes, out var f), f);
        Assert.Equal(banner + "\0", Encoding.ASCII.GetString(bytes));
        Assert.StartsWith("Linux version 6.1.0-50-arm64 ", banner, StringComparison.Ordinal);
        Assert.True(_dump.Kernel.TryTranslate(va, out var pa, out _, out f), f);
        Assert.Equal(va - _dump.KimageVoffset, pa);
    }

    [Fact]
    public void Every_truth_symbol_in_the_kernel_image_translates_to_its_image_address()
    {
        // map_kernel maps the image from _stext: the 64 KiB header before it (from _text) has no PTEs.
        var start = _dump.Runtime("_stext");
        var end = _dump.Runtime("_end");
        Assert.False(_dump.Kernel.TryTranslate(_dump.Runtime("_text"), out _, out _, out var header));
        Assert.Equal("cannot translate 0xffffba1382200000: PTE entry not present (0x0) at level 3", header);
        var initBegin = _dump.Runtime("__init_begin");
        var initEnd = _dump.Runtime("__init_end");
        var seen = 0;
        var outside = new List<string>();
        var init = new List<string>();
        var spans = new SortedDictionary<ulong, int>();
        foreach (var p in Truth.GetProperty("kernel_symbols_runtime").EnumerateObject())
        {
            var va = Hex(p.Value.GetString()!);
            if (_dump.Map.TryGetValue(p.Name, out var linked))
                Assert.Equal(linked + _dump.KaslrOffset, va);
            if (va < start || va >= end)
            {
                outside.Add(p.Name);
                continue;
            }
            if (va >= initBegin && va < initEnd)
            {
                // free_initmem unmaps [__init_begin, __init_end) after boot; static per-cpu variables live there.
                Assert.False(_dump.Kernel.TryTranslate(va, out _, out _, out var gone));
                Assert.Matches($"^cannot translate 0x{va:x}: (PMD|PTE) entry not present \\(0x0\\) at level [23]$", gone);
                init.Add(p.Name);
                continue;
            }
            Assert.True(_dump.Kernel.TryTranslate(va, out var pa, out var run, out var f), $"{p.Name}: {f}");
            Assert.Equal(va - _dump.KimageVoffset, pa);
            Assert.InRange(pa, 0x4020_0000UL, 0x4221_0000UL);
            var pageStart = va & ~0xfffUL;
            Assert.True(_dump.Kernel.TryTranslate(pageStart, out _, out var mapped, out f), f);
            spans[mapped] = spans.GetValueOrDefault(mapped) + 1;
            seen++;
        }
        Assert.Equal(["_text", "_end"], outside);
        Assert.Equal(["runqueues"], init);
        Assert.True(seen >= 20, $"{seen} symbols");
        _output.WriteLine($"image symbols translated: {seen}; unmapped init: {string.Join(", ", init)}; bytes mapped from their page start: {string.Join(", ", spans.Select(s => $"0x{s.Key:x} x{s.Value}"))}");

        // Each value the guest read through /proc/kcore at those addresses reads the same through the tables.
        foreach (var p in Truth.GetProperty("kernel_values_runtime").EnumerateObject())
        {
            var va = Hex(p.Value.GetProperty("addr").GetString()!);
            var expected = Hex(p.Value.GetProperty("value_native_long").GetString()!);
            Assert.True(va >= start && va < end, p.Name);
            Assert.Equal((p.Name, expected), (p.Name, _dump.ReadU64(va)));
        }
    }

    [Fact]
    public void Linear_map_addresses_translate_to_phys_offset_based_addresses()
    {
        var values = Truth.GetProperty("kernel_values_runtime");
        var ram = (Start: 0x4000_0000UL, End: 0x6000_0000UL);
        var highMemory = Hex(values.GetProperty("high_memory").GetProperty("value_native_long").GetString()!);
        var linear = new[]
        {
            _dump.PageOffset,
            _dump.PageOffset + 0x12_3458UL,
            Hex(values.GetProperty("vmcoreinfo_data").GetProperty("value_native_long").GetString()!),
            Hex(values.GetProperty("mem_section").GetProperty("value_native_long").GetString()!),
            _dump.ReadU64(_dump.Runtime("vmcoreinfo_note")),
            highMemory - 1,
        };
        foreach (var va in linear)
        {
            Assert.True(_dump.Kernel.TryTranslate(va, out var pa, out var run, out var f), f);
            Assert.Equal(va - _dump.PageOffset + _dump.PhysOffset, pa);
            Assert.InRange(pa, ram.Start, ram.End - 1);
            Assert.True(run >= 1 && pa + run <= ram.End);
        }
        Assert.Equal(ram.End, highMemory - _dump.PageOffset + _dump.PhysOffset);

        // /sys/kernel/vmcoreinfo gave the note's physical address: its ELF note header names VMCOREINFO.
        var notePa = Hex(Truth.GetProperty("sys_kernel_vmcoreinfo").GetString()!);
        Assert.True(_dump.Kernel.TryTranslate(_dump.ReadU64(_dump.Runtime("vmcoreinfo_note")), out var notePhys, out _, out var nf), nf);
        Assert.Equal(notePa, notePhys);
        var note = new byte[24];
        Assert.True(_dump.Kernel.TryReadVirtual(_dump.File, _dump.ReadU64(_dump.Runtime("vmcoreinfo_note")), note, out nf), nf);
        Assert.Equal(11u, BinaryPrimitives.ReadUInt32LittleEndian(note));
        Assert.Equal("VMCOREINFO\0", Encoding.ASCII.GetString(note, 12, 11));

        // The end of RAM is mapped no further; a user address is the other half.
        Assert.False(_dump.Kernel.TryTranslate(highMemory, out _, out _, out var failure));
        Assert.Matches(@"^cannot translate 0xffff000020000000: (PTE|PMD|PUD) entry not present \(0x[0-9a-f]+\) at level [1-3]$", failure);
        Assert.False(_dump.Kernel.TryTranslate(0x1337_0000UL, out _, out _, out failure));
        Assert.Equal("cannot translate 0x13370000: a user (TTBR0) address, but these are kernel (TTBR1) tables (bits 63:48 are all zeros)", failure);
    }

    [Fact]
    public void Labmarker_pages_translate_through_the_processs_own_tables()
    {
        var btf = BtfReader.Load(Fixtures.Get($"{Folder}/vmlinux-6.1.0-50-arm64.btf"));
        Assert.True(btf.TryFindComposite("task_struct", out var taskId));
        Assert.True(btf.TryFindComposite("mm_struct", out var mmId));
        long Offset(int id, string member) => (btf.FindMember(id, member) ?? throw new InvalidOperationException(member)).BitOffset / 8;
        var tasks = (ulong)Offset(taskId, "tasks");
        var pidAt = (ulong)Offset(taskId, "pid");
        var commAt = (ulong)Offset(taskId, "comm");
        var mmAt = (ulong)Offset(taskId, "mm");
        var pgdAt = (ulong)Offset(mmId, "pgd");

        var marker = Truth.GetProperty("labmarker");
        var pid = marker.GetProperty("page0").GetProperty("pid").GetInt32();
        var init = _dump.Runtime("init_task");
        ulong mm = 0;
        var head = init + tasks;
        var next = _dump.ReadU64(head);
        for (var i = 0; i < 10_000 && next != head; i++, next = _dump.ReadU64(next))
        {
            var task = next - tasks;
            Span<byte> b = stackalloc byte[4];
            _dump.Kernel.ReadVirtual(_dump.File, task + pidAt, b);
            if (BinaryPrimitives.ReadInt32LittleEndian(b) != pid)
                continue;
            var comm = new byte[16];
            _dump.Kernel.ReadVirtual(_dump.File, task + commAt, comm);
            Assert.Equal("labmarker", Encoding.ASCII.GetString(comm).TrimEnd('\0'));
            mm = _dump.ReadU64(task + mmAt);
            break;
        }
        Assert.NotEqual(0UL, mm);
        var pgd = _dump.ReadU64(mm + pgdAt);
        Assert.True(pgd >= _dump.PageOffset, $"mm->pgd 0x{pgd:x} is not a linear-map address");
        Assert.True(_dump.Kernel.TryTranslate(pgd, out var pgdPhys, out _, out var f), f);
        Assert.Equal(pgd - _dump.PageOffset + _dump.PhysOffset, pgdPhys);

        var user = new Arm64PageTables(_dump.File, pgdPhys, Arm64Granule.Size4K, _dump.RunningVaBits, Arm64AddressHalf.User);
        foreach (var (page, pattern) in new[] { ("page0", "pattern_page0"), ("page1", "pattern_page1") })
        {
            var va = Hex(marker.GetProperty(page).GetProperty("va").GetString()!);
            Assert.True(user.TryTranslate(va + 0x10, out var pa, out var run, out f), f);
            Assert.Equal(Hex(marker.GetProperty(page).GetProperty("pa").GetString()!) + 0x10, pa);
            Assert.Equal(0x1000UL - 0x10, run);
            var bytes = new byte[4096];
            Assert.True(user.TryReadVirtual(_dump.File, va, bytes, out f), f);
            AssertRepeats(marker.GetProperty(pattern).GetString()!, bytes);
        }
        var datastr = marker.GetProperty("datastr");
        var text = datastr.GetProperty("text").GetString()!;
        var data = new byte[text.Length];
        Assert.True(user.TryReadVirtual(_dump.File, Hex(datastr.GetProperty("va").GetString()!), data, out f), f);
        Assert.Equal(text, Encoding.ASCII.GetString(data));

        // The page after the two marker pages is outside every mapping of the process.
        Assert.False(user.TryTranslate(0x1337_2000UL, out _, out _, out f));
        Assert.Equal("cannot translate 0x13372000: PTE entry not present (0x0) at level 3", f);
        Assert.False(user.TryTranslate(_dump.Runtime("linux_banner"), out _, out _, out f));
        Assert.StartsWith("cannot translate 0xffffba13830f33e0: a kernel (TTBR1) address, but these are user (TTBR0) tables", f, StringComparison.Ordinal);
    }

    /// <summary>Random addresses over 2048 linear-map pages and the image's data pages translate on the real tables as
    /// the linear map and kimage_voffset say, walked and behind a <see cref="TranslationCache"/>, twice.</summary>
    [Fact]
    public void Random_addresses_translate_as_the_linear_map_and_the_image_offset_say()
    {
        var random = new Random(5);
        var image = _dump.Runtime("_data");
        var addresses = new ulong[1 << 17];
        for (var i = 0; i < addresses.Length; i++)
        {
            var pages = i % 2 == 0 ? 2048 : (int)((_dump.Runtime("_end") - image) / 4096);
            var page = (ulong)random.Next(pages) * 4096;
            addresses[i] = (i % 2 == 0 ? _dump.PageOffset + 0x0100_0000UL : image) + page + ((ulong)random.Next(512) * 8);
        }
        ulong Expected(ulong va) => va >= _dump.PageOffset && va < _dump.PageOffset + (1UL << 40)
            ? va - _dump.PageOffset + _dump.PhysOffset
            : va - _dump.KimageVoffset;
        foreach (var space in new IAddressSpace[] { _dump.Kernel, new TranslationCache(_dump.Kernel) })
        {
            for (var round = 0; round < 2; round++)
            {
                foreach (var va in addresses)
                {
                    if (!space.TryTranslate(va, out var pa, out _, out var f) || pa != Expected(va))
                        Assert.Fail($"0x{va:x}: {f ?? $"0x{pa:x}"}");
                }
            }
        }
    }

    /// <summary>labmarker fills each page with as many whole copies of its pattern as fit; the rest stays zero.</summary>
    private static void AssertRepeats(string pattern, byte[] bytes)
    {
        var copies = bytes.Length / pattern.Length;
        var expected = string.Concat(Enumerable.Repeat(pattern, copies)) + new string('\0', bytes.Length - (copies * pattern.Length));
        Assert.Equal(expected, Encoding.ASCII.GetString(bytes));
    }
}
