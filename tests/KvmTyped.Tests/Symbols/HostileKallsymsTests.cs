using System.Diagnostics.CodeAnalysis;
using KvmTyped.Symbols;
using KvmTyped.Tests.Linux;

namespace KvmTyped.Tests.Symbols;

/// <summary>Damaged or hostile kallsyms tables end in <see cref="KvmFormatException"/> (or <see cref="KvmReadException"/>
/// for memory the dump lacks) naming the dump, the table, its address and what was expected.</summary>
public class HostileKallsymsTests
{
    public static TheoryData<DataModel> Models => new() { DataModel.LP64, DataModel.ILP32 };

    private static KallsymsWriter.Built Kernel(DataModel model, KallsymsAddressMode mode = KallsymsAddressMode.BaseRelative) =>
        KallsymsImageTests.Kernel(model, mode, more: 10).Build();

    private static KvmFormatException Refused(KallsymsWriter.Built built, DataModel model, params string[] parts)
    {
        var e = Assert.Throws<KvmFormatException>(() => built.Decode(model));
        Assert.Equal("test.vmcore", e.Path);
        foreach (var part in parts)
            Assert.Contains(part, e.Message, StringComparison.Ordinal);
        return e;
    }

    private static string Hex(ulong v) => $"0x{v:x}";

    private static ulong Limit(DataModel model) => model == DataModel.LP64 ? ulong.MaxValue : uint.MaxValue;

    /// <summary>Reads from the first block that holds the whole range.</summary>
    private static ReadVirtualMemory Join(params FlatKernelMemory[] blocks) =>
        (ulong a, Span<byte> d, [NotNullWhen(false)] out string? f) =>
        {
            foreach (var b in blocks)
            {
                if (b.TryReadVirtual(a, d, out f))
                    return true;
            }
            f = $"0x{a:x} is not in any block";
            return false;
        };

    [Theory]
    [MemberData(nameof(Models))]
    public void A_symbol_count_of_zero_or_above_the_cap_is_refused(DataModel model)
    {
        var built = Kernel(model);
        built.Memory.U32(built.Tables.NumSyms, 0);
        Refused(built, model, "kallsyms_num_syms", Hex(built.Tables.NumSyms), "0 symbols, expected 1 to 4194304");
        built.Memory.U32(built.Tables.NumSyms, uint.MaxValue);
        Refused(built, model, "4294967295 symbols");
        built.Memory.U32(built.Tables.NumSyms, KallsymsImage.MaxSymbols + 1);
        Refused(built, model, "4194305 symbols");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_count_above_the_names_written_runs_into_the_next_table(DataModel model)
    {
        var built = Kernel(model);
        var count = built.NameOffsets.Count;
        built.Memory.U32(built.Tables.NumSyms, (uint)count + 5);
        // After the last name come padding and kallsyms_markers, whose first entry is 0: a zero length.
        Refused(built, model, "kallsyms_names", Hex(built.Tables.Names), $"symbol {count} at byte", "length 0");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Token_index_entries_must_point_at_consecutive_tokens(DataModel model)
    {
        var built = Kernel(model);
        var index = built.Tables.TokenIndex;
        built.Memory.U16(index, 3);
        Refused(built, model, "kallsyms_token_index", Hex(index), "entry 0 is 3, expected 0");

        built = Kernel(model);
        built.Memory.U16(built.Tables.TokenIndex + 200 * 2, 60000);
        var e = Refused(built, model, "kallsyms_token_index", "entry 200 is 60000, expected ");
        Assert.Contains("each token follows the one before", e.Message, StringComparison.Ordinal);

        built = Kernel(model);
        built.Memory.U16(built.Tables.TokenIndex + 255 * 2, ushort.MaxValue);
        Refused(built, model, "entry 255 is 65535");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_token_longer_than_the_cap_is_refused(DataModel model)
    {
        var writer = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative) { ExtraTokens = [new string('q', 1500)] };
        writer.Add("_stext", KallsymsImageTests.TextBase(model), 'T');
        Refused(writer.Build(), model, "kallsyms_token_table", "is 1500 bytes long, expected at most 1024");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_token_with_no_nul_is_refused_and_one_running_into_missing_memory_is_named(DataModel model)
    {
        var built = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative) { Slack = 3000 }.Add("_stext", KallsymsImageTests.TextBase(model), 'T').Build();
        // Point the token table at 3000 bytes of 'x' after the tables.
        var end = built.Memory.Base + (ulong)built.Memory.Bytes.Length;
        built.Memory.Bytes.AsSpan(built.Memory.Bytes.Length - 3000).Fill((byte)'x');
        var noNul = built with { Tables = built.Tables with { TokenTable = end - 3000 } };
        Refused(noNul, model, "kallsyms_token_table", Hex(end - 3000), "token 0 at byte 0 has no NUL within 1024 bytes");

        var intoTheVoid = built with { Tables = built.Tables with { TokenTable = end - 100 } };
        var e = Assert.Throws<KvmReadException>(() => intoTheVoid.Decode(model));
        Assert.Contains("test.vmcore: cannot read kallsyms_token_table", e.Message, StringComparison.Ordinal);
        Assert.Equal(end, e.Address);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_zero_length_name_is_refused(DataModel model)
    {
        var built = Kernel(model);
        built.At(built.Tables.Names, built.NameOffsets[2]) = 0;
        Refused(built, model, "kallsyms_names", $"symbol 2 at byte {built.NameOffsets[2]}: length 0");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Length_bytes_that_overflow_two_bytes_or_the_cap_are_refused(DataModel model)
    {
        var built = Kernel(model);
        var at = built.NameOffsets[1];
        built.At(built.Tables.Names, at) = 0x81;
        built.At(built.Tables.Names, at + 1) = 0x80;
        Refused(built, model, "symbol 1 at byte", "length bytes 0x81 0x80 do not end in two bytes");

        built = Kernel(model);
        built.At(built.Tables.Names, at) = 0xff;
        built.At(built.Tables.Names, at + 1) = 0x7f;
        Refused(built, model, "symbol 1 at byte", "length 16383 tokens, expected at most 1024");

        var writer = KallsymsImageTests.Kernel(model, KallsymsAddressMode.BaseRelative);
        writer.Add(string.Concat(Enumerable.Range(0, 1100).Select(i => (char)('A' + (i % 26)))), KallsymsImageTests.TextBase(model) + 0x0300_0000, 'T');
        Refused(writer.Build(), model, $"symbol {writer.Symbols.Count - 1} at byte", "length 1101 tokens, expected at most 1024");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_name_that_expands_past_the_cap_is_refused(DataModel model)
    {
        var writer = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative) { ExtraTokens = ["abcdefghij"] };
        var text = KallsymsImageTests.TextBase(model);
        writer.Add("_stext", text, 'T').Add(string.Concat(Enumerable.Repeat("abcdefghij", 110)), text + 8, 't');
        Refused(writer.Build(), model, "symbol 1 at byte", "expands to more than 1024 bytes");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_name_without_a_type_and_a_name_or_with_an_unprintable_type_is_refused(DataModel model)
    {
        var text = KallsymsImageTests.TextBase(model);
        var empty = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative).Add("_stext", text, 'T').Add("", text + 4, 't');
        Refused(empty.Build(), model, "symbol 1 at byte", "expands to 1 byte(s), expected a type letter and a name");
        var control = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative).Add("_stext", text, 'T').Add("x", text + 4, '\u0001');
        Refused(control.Build(), model, "symbol 1 at byte", "type byte 0x01 is not a printable ASCII letter");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Names_that_run_past_the_end_of_the_address_space_are_refused(DataModel model)
    {
        var built = Kernel(model);
        // The names stream is the last 10 bytes of the address space: a 5-token name, then a 9-token one that cannot fit.
        var tail = new FlatKernelMemory(model, Limit(model) - 9, 10);
        byte[] stream = [5, (byte)'T', (byte)'_', (byte)'s', (byte)'y', (byte)'m', 9, (byte)'t', (byte)'a', (byte)'b'];
        stream.CopyTo(tail.Bytes, 0);
        var tables = built.Tables with { Names = tail.Base, Stext = null };
        var e = Assert.Throws<KvmFormatException>(() => KallsymsImage.Decode(Join(built.Memory, tail), tables, model, "test.vmcore"));
        Assert.Contains("symbol 1 at byte 6: its 9 tokens would run past the 10 bytes the stream may take before the end of the address space", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_region_never_reads_past_its_cap()
    {
        var memory = new FlatKernelMemory(DataModel.LP64, 0x1000, 1 << 16);
        var region = new KallsymsRegion(memory.TryReadVirtual, "kallsyms_names", 0x1000, 100, ulong.MaxValue, "test.vmcore");
        Assert.True(region.TryEnsure(100));
        Assert.Equal(100, region.Length);
        Assert.False(region.TryEnsure(101));
        Assert.Equal(100, region.Length);
        Assert.Equal(1, memory.Reads);
        Assert.Equal(1, region.Reads);
        Assert.Equal(KallsymsImage.MaxNamesBytes, new KallsymsRegion(memory.TryReadVirtual, "kallsyms_names", 0x1000, KallsymsImage.MaxNamesBytes, ulong.MaxValue, "t").Cap);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Names_in_memory_the_dump_lacks_are_named_with_their_address(DataModel model)
    {
        var built = Kernel(model);
        var hole = built.Tables.Names + (ulong)built.NameOffsets[5];
        bool Holed(ulong a, Span<byte> d, [NotNullWhen(false)] out string? f)
        {
            if (a <= hole && hole < a + (ulong)d.Length)
            {
                f = "page excluded from the dump";
                return false;
            }
            return built.Memory.TryReadVirtual(a, d, out f);
        }
        var e = Assert.Throws<KvmReadException>(() => KallsymsImage.Decode(Holed, built.Tables, model, "test.vmcore"));
        Assert.Equal(hole, e.Address);
        Assert.Contains($"test.vmcore: cannot read kallsyms_names at {Hex(hole)}", e.Message, StringComparison.Ordinal);
        Assert.Contains("page excluded from the dump", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Offsets_out_of_address_order_fit_no_encoding(DataModel model)
    {
        foreach (var mode in new[] { KallsymsAddressMode.BaseRelative, KallsymsAddressMode.AbsolutePerCpu })
        {
            var built = Kernel(model, mode);
            var first = built.Decode(model);
            var i = first.Symbols.ToList().FindIndex(s => s.Name == "do_one_initcall");
            // Give do_one_initcall the offset of the symbol after it, and that one the offset of do_one_initcall.
            var at = built.Tables.Offsets!.Value + (ulong)(4 * i);
            var a = BitConverter.ToUInt32(built.Memory.Bytes, (int)(at - built.Memory.Base));
            var b = BitConverter.ToUInt32(built.Memory.Bytes, (int)(at + 4 - built.Memory.Base));
            built.Memory.U32(at, b);
            built.Memory.U32(at + 4, a);
            var e = Refused(built, model, "kallsyms_offsets", Hex(built.Tables.Offsets.Value), "no address encoding fits", "base-relative: ", "absolute per-CPU: ");
            Assert.Contains($"symbol {i + 1} (\"dup\")", e.Message, StringComparison.Ordinal);
            Assert.Contains("the kernel keeps kallsyms in address order", e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void An_offset_that_leaves_the_address_space_is_refused(DataModel model)
    {
        var built = Kernel(model);
        var last = built.NameOffsets.Count - 1;
        // A positive offset so large that base + offset passes the top of a 32-bit space; in 64 bits move the base up.
        built.Memory.U32(built.Tables.Offsets!.Value + (ulong)(4 * last), 0x7fffffff);
        if (model == DataModel.LP64)
            built.Memory.Ptr(built.Tables.RelativeBase!.Value, 0xffffffffc0000000);
        var e = Refused(built, model, "no address encoding fits", $"lies outside the {(model == DataModel.LP64 ? 64 : 32)}-bit address space");
        Assert.Contains("absolute per-CPU: no offset is negative", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Stext_must_decode_to_vmcoreinfos_value(DataModel model)
    {
        foreach (var mode in new[] { KallsymsAddressMode.BaseRelative, KallsymsAddressMode.AbsolutePerCpu, KallsymsAddressMode.Absolute })
        {
            var built = Kernel(model, mode);
            var stext = built.Tables.Stext!.Value;
            var wrong = built with { Tables = built.Tables with { Stext = stext + 0x200000 } };
            Refused(wrong, model, $"decodes to {Hex(stext)}, but VMCOREINFO gives SYMBOL(_stext)={Hex(stext + 0x200000)}");
        }
        var writer = new KallsymsWriter(model, KallsymsAddressMode.BaseRelative).Add("_text", KallsymsImageTests.TextBase(model), 'T');
        var noStext = writer.Build();
        noStext = noStext with { Tables = noStext.Tables with { Stext = KallsymsImageTests.TextBase(model) } };
        Refused(noStext, model, "no _stext among the 1 names, though VMCOREINFO gives SYMBOL(_stext)=");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kallsyms_addresses_out_of_order_are_refused(DataModel model)
    {
        var built = Kernel(model, KallsymsAddressMode.Absolute);
        var ptr = model.PointerSize();
        built.Memory.Ptr(built.Tables.Addresses!.Value + (ulong)(3 * ptr), 0x1000);
        Refused(built, model, "kallsyms_addresses", Hex(built.Tables.Addresses.Value), "symbol 3 (\"dup\") at 0x1000 lies below symbol 2");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Unreadable_count_or_relative_base_is_named(DataModel model)
    {
        var built = Kernel(model);
        var outside = built.Memory.Base + (ulong)built.Memory.Bytes.Length + 0x10000;
        var e = Assert.Throws<KvmReadException>(() => (built with { Tables = built.Tables with { NumSyms = outside } }).Decode(model));
        Assert.Contains($"cannot read kallsyms_num_syms at {Hex(outside)}", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmReadException>(() => (built with { Tables = built.Tables with { RelativeBase = outside } }).Decode(model));
        Assert.Contains($"cannot read kallsyms_relative_base at {Hex(outside)}", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KvmReadException>(() => (built with { Tables = built.Tables with { Offsets = outside } }).Decode(model));
        Assert.Contains($"cannot read kallsyms_offsets at {Hex(outside)}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tables_outside_a_32_bit_address_space_are_refused()
    {
        var built = Kernel(DataModel.ILP32);
        var e = Refused(built with { Tables = built.Tables with { TokenIndex = 0x1_0000_0000 } }, DataModel.ILP32,
            "kallsyms_token_index at 0x100000000: outside the 32-bit address space");
        Assert.Null(e.Offset);
        Refused(built with { Tables = built.Tables with { Offsets = 0xffff_fff0 } }, DataModel.ILP32,
            "kallsyms_offsets at 0xfffffff0: its ", "bytes run past the end of the 32-bit address space");
    }
}
