using KvmTyped.Btf;
using KvmTyped.Types;

namespace KvmTyped.Tests.Btf;

/// <summary>Relocating optional members: a kernel whose member of that name has another type does not have it as
/// declared, so it is absent instead of failing the struct; a required member of another type still fails.</summary>
public sealed class OptionalRelocationTests
{
    private static BtfRelocator Kernel()
    {
        var b = new BtfBuilder();
        var i32 = b.Int("int", 4, encoding: 1);
        var u16 = b.Int("short unsigned int", 2);
        b.Int("long int", 8, encoding: 1);
        b.Struct("pt_regs", 16, ("ip", b.Int("long unsigned int", 8), 0, 0), ("cs", u16, 64, 0), ("pid", i32, 96, 0));
        return new BtfRelocator(BtfTypes.Parse(b.Build()), DataModel.LP64, "kernel 6.9-fred");
    }

    private static readonly KernelFieldType ULong = new(KernelFieldKind.Int, 4, 8);
    private static readonly KernelFieldType UShort = new(KernelFieldKind.Int, 2, 2);

    [Fact]
    public void OptionalMemberOfAnotherTypeIsAbsent()
    {
        var request = new KernelRelocationRequest("pt_regs___pre_6_9", false, ["ip", "cs"], [ULong, ULong], [false, true]);
        var r = Kernel().Relocate(request);
        Assert.True(r.Has(0));
        Assert.False(r.Has(1));
        var e = Assert.Throws<KvmException>(() => r.ByteOffset(1));
        Assert.Contains("'cs'", e.Message, StringComparison.Ordinal);
        Assert.Contains("kernel 6.9-fred", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionalMemberOfTheDeclaredTypeIsPlaced()
    {
        var r = Kernel().Relocate(new KernelRelocationRequest("pt_regs___fred", false, ["cs"], [UShort], [true]));
        Assert.True(r.Has(0));
        Assert.Equal(8UL, r.ByteOffset(0));
    }

    [Fact]
    public void RequiredMemberOfAnotherTypeStillFails()
    {
        var e = Assert.Throws<KvmException>(() => Kernel().Relocate(new KernelRelocationRequest("pt_regs", false, ["cs"], [ULong], [false])));
        Assert.Contains("member 'cs': declared unsigned 8-byte int", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new KernelRelocationRequest("pt_regs", false, ["cs"], [ULong], [true, false]));
    }
}
