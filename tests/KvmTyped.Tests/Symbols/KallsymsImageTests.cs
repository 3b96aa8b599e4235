using System.Diagnostics.CodeAnalysis;
using KvmTyped.Symbols;

namespace KvmTyped.Tests.Symbols;

/// <summary>kallsyms tables built in code (<see cref="KallsymsWriter"/>) decode to the symbols written, for both data
/// models and every address encoding; the encoding is told apart as the kernel's own invariants allow.</summary>
public class KallsymsImageTests
{
    /// <summary>Data model and address encoding (a <see cref="KallsymsAddressMode"/> name: the enum is internal).</summary>
    public static TheoryData<DataModel, string> EveryLayout => new()
    {
        { DataModel.LP64, nameof(KallsymsAddressMode.BaseRelative) },
        { DataModel.LP64, nameof(KallsymsAddressMode.AbsolutePerCpu) },
        { DataModel.LP64, nameof(KallsymsAddressMode.Absolute) },
        { DataModel.ILP32, nameof(KallsymsAddressMode.BaseRelative) },
        { DataModel.ILP32, nameof(KallsymsAddressMode.AbsolutePerCpu) },
        { DataModel.ILP32, nameof(KallsymsAddressMode.Absolute) },
    };

    internal static ulong TextBase(DataModel model) => model == DataModel.LP64 ? 0xffffffff81000000 : 0xc1000000;

    /// <summary>A small kernel: per-CPU symbols first where the encoding has them, then text, data, rodata and bss,
    /// a name that is both local and global, and <paramref name="more"/> generated text symbols.</summary>
    internal static KallsymsWriter Kernel(DataModel model, KallsymsAddressMode mode, int more = 0, int slack = 0)
    {
        var w = new KallsymsWriter(model, mode) { Slack = slack };
        var text = TextBase(model);
        if (mode == KallsymsAddressMode.AbsolutePerCpu)
            w.Add("__per_cpu_start", 0, 'A').Add("fixed_percpu_data", 0, 'A').Add("runqueues", 0x31c40, 'A').Add("__per_cpu_end", 0x35000, 'A');
        w.Add("_text", text, 'T').Add("_stext", text, 'T').Add("do_one_initcall", text + 0x100, 'T')
            .Add("dup", text + 0x180, 't').Add("dup", text + 0x200, 'T').Add("dup", text + 0x280, 't')
            .Add("sys_read", text + 0x300, 'W');
        for (var i = 0; i < more; i++)
            w.Add($"generated_function_{i}", text + 0x1000 + (ulong)i * 16, i % 3 == 0 ? 'T' : 't');
        var data = text + 0x0100_0000;
        w.Add("linux_banner", data, 'R').Add("static_rodata", data + 0x40, 'r').Add("init_task", data + 0x10000, 'D')
            .Add("local_data", data + 0x10100, 'd').Add("global_bss", data + 0x20000, 'B').Add("local_bss", data + 0x20010, 'b');
        return w;
    }

    [Theory]
    [MemberData(nameof(EveryLayout))]
    public void Every_symbol_comes_back_with_its_address_and_type(DataModel model, string encoding)
    {
        var mode = Enum.Parse<KallsymsAddressMode>(encoding);
        var writer = Kernel(model, mode, more: 300);
        var built = writer.Build();
        var table = built.Decode(model);
        Assert.Equal(mode, table.Mode);
        Assert.Equal(writer.Symbols, table.Symbols);
        Assert.Equal(writer.Symbols.Count, table.Count);
        Assert.Equal(model, table.DataModel);
        Assert.Equal("kallsyms (dump)", table.Kind);
        Assert.Equal("test.vmcore", table.Source);
        // Multi-character tokens were used: the names are compressed, not spelt out.
        Assert.True(built.Tables.TokenTable - built.Tables.Names < (ulong)writer.Symbols.Sum(s => s.Name.Length + 2));
    }

    [Theory]
    [MemberData(nameof(EveryLayout))]
    public void Lookups_prefer_the_global_name_and_nearest_takes_the_first_at_an_address(DataModel model, string encoding)
    {
        var mode = Enum.Parse<KallsymsAddressMode>(encoding);
        var table = Kernel(model, mode).Build().Decode(model);
        var text = TextBase(model);
        Assert.True(table.TryLookup("dup", out var dup));
        Assert.Equal((text + 0x200, 'T'), (dup.Address, dup.Type));
        Assert.True(table.TryFindNearest(text + 0x50, out var near));
        Assert.Equal("_text", near.Name);
        Assert.True(table.TryFindNearest(text + 0x27f, out near));
        Assert.Equal((text + 0x200, "dup"), (near.Address, near.Name));
        Assert.False(table.TryLookup("no_such_symbol", out _));
        if (mode == KallsymsAddressMode.AbsolutePerCpu)
        {
            // Per-CPU symbols keep their zero-based offsets, as /proc/kallsyms shows them.
            Assert.True(table.TryLookup("runqueues", out var rq));
            Assert.Equal((0x31c40UL, 'A'), (rq.Address, rq.Type));
            Assert.True(table.TryFindNearest(0x31c48, out near));
            Assert.Equal("runqueues", near.Name);
        }
        else
        {
            Assert.False(table.TryFindNearest(text - 1, out _));
        }
    }

    [Theory]
    [InlineData(DataModel.LP64)]
    [InlineData(DataModel.ILP32)]
    public void A_name_of_128_tokens_or_more_has_a_two_byte_length(DataModel model)
    {
        var writer = Kernel(model, KallsymsAddressMode.BaseRelative);
        var text = TextBase(model);
        // No token spans more than one of these characters: 130 and 500 tokens.
        var name130 = string.Concat(Enumerable.Range(0, 129).Select(i => (char)('A' + (i % 26))));
        var name500 = string.Concat(Enumerable.Range(0, 499).Select(i => (char)('A' + (i % 26))));
        writer.Add(name130, text + 0x0200_0000, 'T').Add(name500, text + 0x0200_0010, 't');
        var built = writer.Build();
        var at130 = built.NameOffsets[^2];
        Assert.Equal(0x80 | (130 & 0x7f), built.At(built.Tables.Names, at130));
        Assert.Equal(130 >> 7, built.At(built.Tables.Names, at130 + 1));
        var table = built.Decode(model);
        Assert.Equal(writer.Symbols, table.Symbols);
        Assert.True(table.TryLookup(name500, out var s));
        Assert.Equal(text + 0x0200_0010, s.Address);
    }

    [Fact]
    public void Before_6_1_a_length_byte_above_0x7f_is_one_whole_byte()
    {
        var writer = new KallsymsWriter(DataModel.LP64, KallsymsAddressMode.BaseRelative) { TwoByteLengths = false };
        var text = TextBase(DataModel.LP64);
        var name = string.Concat(Enumerable.Range(0, 199).Select(i => (char)('a' + (i % 26))));
        writer.Add("_stext", text, 'T').Add(name, text + 0x10, 't').Add("after_it", text + 0x20, 'T');
        var built = writer.Build();
        Assert.False(built.Tables.TwoByteLengths);
        Assert.Equal(200, built.At(built.Tables.Names, built.NameOffsets[1]));
        Assert.Equal(writer.Symbols, built.Decode(DataModel.LP64).Symbols);
        // Read as 6.1 would, the same bytes are a different stream: the decoder trusts the release it is told.
        Assert.ThrowsAny<KvmException>(() => KallsymsImage.Decode(built.Memory.TryReadVirtual, built.Tables with { TwoByteLengths = true }, DataModel.LP64, "old.vmcore"));
    }

    [Theory]
    [InlineData(DataModel.LP64, 0xffff800008000000, true)]
    [InlineData(DataModel.LP64, 0xffffffff81000000, false)]
    [InlineData(DataModel.ILP32, 0xc1000000, false)]
    public void Stext_from_vmcoreinfo_tells_the_encodings_apart_where_both_fit(DataModel model, ulong stext, bool ambiguousWithoutStext)
    {
        // Per-CPU symbols then a single kernel symbol: its offset -1 is also the largest unsigned offset, so both
        // encodings give ascending addresses unless base + 0xffffffff leaves the address space. Only _stext says
        // which one the kernel meant.
        var writer = new KallsymsWriter(model, KallsymsAddressMode.AbsolutePerCpu)
            .Add("__per_cpu_start", 0, 'A').Add("runqueues", 0x31c40, 'A').Add("_stext", stext, 'T');
        var table = writer.Build().Decode(model);
        Assert.Equal(KallsymsAddressMode.AbsolutePerCpu, table.Mode);
        Assert.Equal(writer.Symbols, table.Symbols);

        var withoutStext = writer.Build(withStext: false);
        if (ambiguousWithoutStext)
        {
            var e = Assert.Throws<KvmFormatException>(() => withoutStext.Decode(model));
            Assert.Contains("both the base-relative and the absolute per-CPU encodings fit", e.Message, StringComparison.Ordinal);
            Assert.Contains("SYMBOL(_stext)", e.Message, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(KallsymsAddressMode.AbsolutePerCpu, withoutStext.Decode(model).Mode);
        }
    }

    [Theory]
    [MemberData(nameof(EveryLayout))]
    public void Without_stext_in_vmcoreinfo_the_order_of_the_addresses_decides(DataModel model, string encoding)
    {
        var mode = Enum.Parse<KallsymsAddressMode>(encoding);
        var writer = Kernel(model, mode, more: 20);
        var table = writer.Build(withStext: false).Decode(model);
        Assert.Equal(mode, table.Mode);
        Assert.Equal(writer.Symbols, table.Symbols);
    }

    [Theory]
    [InlineData(DataModel.LP64, 0)]
    [InlineData(DataModel.LP64, 1 << 20)]
    [InlineData(DataModel.ILP32, 0)]
    [InlineData(DataModel.ILP32, 1 << 20)]
    public void Tables_are_read_in_a_few_large_reads_even_where_memory_ends_right_after_them(DataModel model, int slack)
    {
        var writer = Kernel(model, KallsymsAddressMode.BaseRelative, more: 40_000, slack: slack);
        var built = writer.Build();
        var namesLength = (int)(built.Tables.TokenTable - built.Tables.Names);
        Assert.True(namesLength > 4 * KallsymsRegion.FirstChunk, $"names stream of {namesLength} bytes: too short to need several chunks");
        var reads = 0;
        var largest = 0;
        bool Counting(ulong a, Span<byte> d, [NotNullWhen(false)] out string? f)
        {
            reads++;
            largest = Math.Max(largest, d.Length);
            return built.Memory.TryReadVirtual(a, d, out f);
        }
        var table = KallsymsImage.Decode(Counting, built.Tables, model, "test.vmcore");
        Assert.Equal(writer.Symbols.Count, table.Count);
        Assert.Equal(writer.Symbols[^1], table.Symbols[^1]);
        // num_syms, token index, token table, offsets, relative base: one read each; names: a doubling series of
        // chunks. Where memory ends right after the tables (and, here, not even on a page boundary), failed chunks
        // are retried at half size and the edge bisected: a few dozen reads, against 40,000 symbols.
        Assert.InRange(reads, 8, slack > 0 ? 12 : 48);
        Assert.True(largest >= 256 * 1024, $"largest read {largest} bytes");
    }

    [Fact]
    public void Empty_tokens_in_the_table_are_allowed()
    {
        // Byte values neither used by a name nor given a token are written as empty strings by scripts/kallsyms.c.
        var writer = new KallsymsWriter(DataModel.LP64, KallsymsAddressMode.BaseRelative) { ExtraTokens = [] };
        writer.Add("_stext", TextBase(DataModel.LP64), 'T').Add("x", TextBase(DataModel.LP64) + 1, 't');
        var built = writer.Build();
        Assert.Contains(built.Tokens, t => t.Length == 0);
        Assert.Equal(writer.Symbols, built.Decode(DataModel.LP64).Symbols);
    }
}
