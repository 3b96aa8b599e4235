using KvmTyped.Symbols;

namespace KvmTyped.Tests.Symbols;

/// <summary>The compact reader of the kernel's kallsyms (used for the running kernel) answers every lookup as the full
/// decode (<see cref="KallsymsImage"/>) does, and refuses what it refuses.</summary>
public class KernelKallsymsTests
{
    private static KernelKallsyms Load(KallsymsWriter.Built built, DataModel model) =>
        KernelKallsyms.Load(built.Memory.TryReadVirtual, built.Tables, model, "test.kcore");

    [Theory]
    [MemberData(nameof(KallsymsImageTests.EveryLayout), MemberType = typeof(KallsymsImageTests))]
    public void Every_lookup_agrees_with_the_full_decode(DataModel model, string encoding)
    {
        var mode = Enum.Parse<KallsymsAddressMode>(encoding);
        var built = KallsymsImageTests.Kernel(model, mode, more: 300).Build();
        var full = built.Decode(model);
        var compact = Load(built, model);
        Assert.Equal(full.Count, compact.Count);
        Assert.Equal(full.Mode, compact.Mode);
        Assert.Equal(full.Symbols.Max(s => s.Address), compact.LastAddress);
        foreach (var s in full.Symbols)
        {
            Assert.True(full.TryLookup(s.Name, out var want));
            Assert.True(compact.TryLookup(s.Name, out var got));
            Assert.Equal(want, got);
            foreach (var a in (ulong[])[s.Address, s.Address + 1, s.Address - 1])
            {
                var found = full.TryFindNearest(a, out var near);
                Assert.Equal(found, compact.TryFindNearest(a, out var gotNear));
                Assert.Equal(near, gotNear);
                found = full.TryFindNext(a, out var next);
                Assert.Equal(found, compact.TryFindNext(a, out var gotNext));
                Assert.Equal(next.Address, gotNext.Address);
            }
        }
        Assert.False(compact.TryLookup("no_such_symbol", out _));
        Assert.False(compact.TryLookup(new string('x', 5000), out _));
    }

    [Fact]
    public void A_global_name_wins_over_locals_of_the_same_name()
    {
        var built = KallsymsImageTests.Kernel(DataModel.LP64, KallsymsAddressMode.BaseRelative).Build();
        var compact = Load(built, DataModel.LP64);
        Assert.True(compact.TryLookup("dup", out var dup));
        Assert.Equal((KallsymsImageTests.TextBase(DataModel.LP64) + 0x200, 'T'), (dup.Address, dup.Type));
        Assert.True(compact.TryLookup("local_bss", out var local));
        Assert.Equal('b', local.Type);
    }

    public static TheoryData<string> Damage => new() { "count-zero", "count-above-cap", "token-index", "zero-length-name", "unprintable-type", "stext-disagrees" };

    [Theory]
    [MemberData(nameof(Damage))]
    public void A_damaged_table_is_refused_as_the_full_decode_refuses_it(string damage)
    {
        var model = DataModel.LP64;
        var built = KallsymsImageTests.Kernel(model, KallsymsAddressMode.BaseRelative, more: 10).Build();
        var tables = built.Tables;
        switch (damage)
        {
            case "count-zero":
                built.Memory.U32(tables.NumSyms, 0);
                break;
            case "count-above-cap":
                built.Memory.U32(tables.NumSyms, KallsymsImage.MaxSymbols + 1);
                break;
            case "token-index":
                built.Memory.U16(tables.TokenIndex + 2, 0x7777);
                break;
            case "zero-length-name":
                built.At(tables.Names, built.NameOffsets[3]) = 0;
                break;
            case "unprintable-type":
                // The first token of the first name gives its type letter: make that token a control character.
                var token = built.At(tables.Names, built.NameOffsets[0] + 1);
                var at = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(built.Memory.Bytes.AsSpan((int)(tables.TokenIndex - built.Memory.Base) + token * 2));
                built.At(tables.TokenTable, at) = 0x01;
                break;
            case "stext-disagrees":
                tables = tables with { Stext = tables.Stext + 0x1000 };
                break;
        }
        var full = Assert.Throws<KvmFormatException>(() => KallsymsImage.Decode(built.Memory.TryReadVirtual, tables, model, "test.kcore"));
        var compact = Assert.Throws<KvmFormatException>(() => KernelKallsyms.Load(built.Memory.TryReadVirtual, tables, model, "test.kcore"));
        Assert.Equal("test.kcore", compact.Path);
        // The same table is named first in both messages.
        Assert.Equal(FirstTable(full.Message), FirstTable(compact.Message));

        static string FirstTable(string message) => message.Split(' ', ':').First(w => w.StartsWith("kallsyms_", StringComparison.Ordinal));
    }
}
