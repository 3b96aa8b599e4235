using KvmTyped.Btf;
using KvmTyped.Linux.Unwind;
using KvmTyped.Tests.Btf;
using KvmTyped.Types;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>cs and ss of an x86-64 pt_regs in both layouts: whole words before 6.9, 16-bit members of a union with
/// FRED's extended slot since.</summary>
public class PtRegsSegmentsTests
{
    private const ulong Regs = 0xffffc90000013f58;

    /// <summary>The members of struct pt_regs from ip on (at their real offsets), cs and ss as <paramref name="fred"/> says.</summary>
    private static BtfTypes Types(bool fred)
    {
        var b = new BtfBuilder();
        var u16 = b.Int("u16", 2);
        var u64 = b.Int("long unsigned int", 8);
        if (fred)
        {
            var cs = b.Union("", 8, ("cs", u16, 0, 0), ("csx", u64, 0, 0));
            var ss = b.Union("", 8, ("ss", u16, 0, 0), ("ssx", u64, 0, 0));
            b.Struct("pt_regs", 168, ("ip", u64, 128 * 8, 0), ("", cs, 136 * 8, 0), ("flags", u64, 144 * 8, 0), ("sp", u64, 152 * 8, 0), ("", ss, 160 * 8, 0));
        }
        else
        {
            b.Struct("pt_regs", 168, ("ip", u64, 128 * 8, 0), ("cs", u64, 136 * 8, 0), ("flags", u64, 144 * 8, 0), ("sp", u64, 152 * 8, 0), ("ss", u64, 160 * 8, 0));
        }
        return BtfTypes.Parse(b.Build(), sourceName: "test BTF", pointerSize: 8);
    }

    [Theory]
    [InlineData(false, 0x0000_beef_0000_0033UL, 0x0000_beef_0000_002bUL)]
    [InlineData(true, 0x33UL, 0x2bUL)]
    public void Cs_and_ss_are_read_in_the_kernel_s_own_layout(bool fred, ulong cs, ulong ss)
    {
        var raw = new SparseKernelMemory(DataModel.LP64).Map(Regs, 168);
        // The words as a FRED kernel leaves them: selector in the low 16 bits, its event data above.
        raw.U64(Regs + 136, 0x0000_beef_0000_0033);
        raw.U64(Regs + 160, 0x0000_beef_0000_002b);
        var memory = FixtureTypes.Placed(raw, Types(fred));
        Assert.Equal((cs, ss), PtRegsSegments.Read(memory, Regs));
    }

    [Fact]
    public void A_kernel_with_neither_form_gives_zeros()
    {
        var b = new BtfBuilder();
        var u64 = b.Int("long unsigned int", 8);
        b.Struct("pt_regs", 168, ("ip", u64, 128 * 8, 0), ("flags", u64, 144 * 8, 0), ("sp", u64, 152 * 8, 0));
        var raw = new SparseKernelMemory(DataModel.LP64).Map(Regs, 168);
        raw.U64(Regs + 136, 0x33);
        var memory = FixtureTypes.Placed(raw, BtfTypes.Parse(b.Build(), sourceName: "test BTF", pointerSize: 8));
        Assert.Equal((0UL, 0UL), PtRegsSegments.Read(memory, Regs));
    }
}
