using System.Diagnostics;
using KvmTyped.Btf;
using KvmTyped.Types;
using KvmTyped.Tools;

namespace KvmTyped.Tests.Btf;

/// <summary>Hostile BTF that shares one type many times over (no cycle, every chain short) expands exponentially;
/// each walk over it stops on a work budget with the library's exception instead of running for ages.</summary>
public class SharedTypeBudgetTests
{
    private const int Levels = 62;

    /// <summary>struct L0 { struct L1; struct L1; }, … struct L61 { }: 2^61 anonymous members, no fields.</summary>
    private static BtfTypes AnonymousLadder()
    {
        var b = new BtfBuilder();
        b.Int("long", 8, encoding: 1);
        for (int i = 0; i < Levels; i++)
        {
            if (i == Levels - 1)
                b.Struct("L" + i, 8);
            else
                b.Struct("L" + i, 8, ("", 3 + i, 0, 0), ("", 3 + i, 0, 0));
        }
        return BtfTypes.Parse(b.Build(), sourceName: "ladder.btf");
    }

    [Fact]
    public void Flattening_shared_anonymous_members_stops_on_its_budget()
    {
        var t = AnonymousLadder();
        int l0 = t.Find("L0", BtfKind.Struct);
        var e = Assert.Throws<KvmFormatException>(() => t.GetFlattenedMembers(l0));
        Assert.Contains($"more than {BtfTypes.MaxFlattenedFields} members", e.Message, StringComparison.Ordinal);
        Assert.Equal("ladder.btf", e.Path);
        Assert.Throws<KvmFormatException>(() => t.FindMember(l0, "a"));
    }

    [Fact]
    public void A_short_ladder_still_flattens_all_its_members()
    {
        // Twelve levels of two anonymous members, one named field at the bottom: 2^11 copies of it, well within budget.
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, encoding: 1);
        for (int i = 0; i < 12; i++)
        {
            if (i == 11)
                b.Struct("L" + i, 4, ("x", i32, 0, 0));
            else
                b.Struct("L" + i, 4, ("", 3 + i, 0, 0), ("", 3 + i, 0, 0));
        }
        var t = BtfTypes.Parse(b.Build());
        Assert.Equal(1 << 11, t.GetFlattenedMembers(t.Find("L0", BtfKind.Struct)).Count);
    }

    [Fact]
    public void Relocating_against_shared_anonymous_members_fails_with_a_kvm_exception()
    {
        var r = new BtfRelocator(AnonymousLadder(), DataModel.LP64);
        Assert.ThrowsAny<KvmException>(() => r.Relocate(new KernelRelocationRequest("L0", false, ["a"])));
    }

    [Fact]
    public void Spelling_function_prototypes_that_share_parameters_stops_on_its_budget()
    {
        // proto_i(p, p, p, p, p, p, p, p) with every p a pointer to proto_i+1; 30 levels: 8^29 parameters to spell.
        var b = new BtfBuilder();
        int l = b.Int("long", 8, encoding: 1);
        const int levels = 30;
        int first = 0;
        for (int i = 0; i < levels; i++)
        {
            int proto = i == levels - 1
                ? b.FuncProto(l)
                : b.FuncProto(0, Enumerable.Range(0, 8).Select(_ => ("p", 3 + 2 * i)).ToArray());
            first = first == 0 ? proto : first;
            b.Ptr(i == levels - 1 ? l : proto + 2);
        }
        var t = BtfTypes.Parse(b.Build(), sourceName: "protos.btf");
        var e = Assert.Throws<KvmFormatException>(() => t.FormatType(first));
        Assert.Contains("characters", e.Message, StringComparison.Ordinal);
        Assert.Throws<KvmFormatException>(() => t.FormatDeclaration(first + 1, "fn"));
        // The last prototypes still spell out in full.
        Assert.Equal("long (void)", t.FormatType(first + 2 * (levels - 1)));
        Assert.Equal("void (long (*)(void), long (*)(void), long (*)(void), long (*)(void), long (*)(void), long (*)(void), long (*)(void), long (*)(void))",
            t.FormatType(first + 2 * (levels - 2)));
    }

    [Fact]
    public void Decoding_structs_that_hold_the_same_struct_twice_stops_on_its_budget()
    {
        // struct S_i { struct S_i+1 a; struct S_i+1 b; } for 30 levels: 2^30 leaves.
        var b = new BtfBuilder();
        int l = b.Int("long", 8, encoding: 1);
        const int levels = 30;
        for (int i = 0; i < levels; i++)
        {
            if (i == levels - 1)
                b.Struct("S" + i, 8, ("x", l, 0, 0));
            else
                b.Struct("S" + i, 8, ("a", 3 + i, 0, 0), ("b", 3 + i, 0, 0));
        }
        var t = BtfTypes.Parse(b.Build(), sourceName: "dag.btf");
        var printer = new BtfValuePrinter(t);
        var e = Assert.ThrowsAny<KvmException>(() => printer.Decode(t.Find("S0", BtfKind.Struct), new byte[8]));
        Assert.Contains($"more than {BtfValuePrinter.MaxValues} parts", e.Message, StringComparison.Ordinal);
        Assert.Contains("dag.btf", e.Message, StringComparison.Ordinal);
        // A level near the bottom decodes in full.
        var small = Assert.IsType<BtfStructValue>(printer.Decode(t.Find("S" + (levels - 3), BtfKind.Struct), new byte[8]));
        Assert.Equal(2, small.Members.Count);
    }
}

public class DumpAndImportBudgetTests
{
    /// <summary>struct L0 { struct { L1 } a; struct { L1 } b; } …: anonymous members shared at every level.</summary>
    private static BtfTypes Ladder()
    {
        var b = new BtfBuilder();
        b.Int("long", 8, encoding: 1);
        const int levels = 40;
        for (int i = 0; i < levels; i++)
        {
            if (i == levels - 1)
                b.Struct("L" + i, 8, ("x", 1, 0, 0));
            else
                b.Struct(i == 0 ? "L0" : "", 8, ("", 3 + i, 0, 0), ("", 3 + i, 0, 0));
        }
        return BtfTypes.Parse(b.Build(), sourceName: "ladder.btf", pointerSize: 8);
    }

    [Fact]
    public void Btf_dump_of_shared_anonymous_members_stops_on_its_budget()
    {
        var t = Ladder();
        var e = Assert.Throws<KvmFormatException>(() => BtfDump.ToText(t, t.Find("L0", BtfKind.Struct)));
        Assert.Contains("characters to print", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_import_of_shared_anonymous_members_fails_cleanly()
    {
        var t = Ladder();
        Assert.ThrowsAny<KvmException>(() => SchemaImport.Complete(t, ["L0"]));
    }
}
