using KvmTyped.Consumer.Tests.Kernel;
using KvmTyped.Types;

namespace KvmTyped.Consumer.Tests;

/// <summary>A project that uses the generator as users do: one struct from a C schema, one from C#, read from a
/// synthetic ILP32 image and a synthetic LP64 image by the same code.</summary>
public sealed class ConsumerTests
{
    private sealed class Image(DataModel model, ulong baseAddress, int size) : IKernelMemory
    {
        private readonly byte[] _bytes = new byte[size];

        public DataModel DataModel => model;

        public bool TryReadVirtual(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            if (address < baseAddress || address - baseAddress + (ulong)destination.Length > (ulong)_bytes.Length)
            {
                failure = $"0x{address:x} is outside the image";
                return false;
            }
            _bytes.AsSpan((int)(address - baseAddress), destination.Length).CopyTo(destination);
            failure = null;
            return true;
        }

        public void Write(ulong address, ulong value, ulong size)
        {
            for (var i = 0; i < (int)size; i++) _bytes[(int)(address - baseAddress) + i] = (byte)(value >> (8 * i));
        }

        public void Write(ulong address, string text)
        {
            for (var i = 0; i < text.Length; i++) _bytes[(int)(address - baseAddress) + i] = (byte)text[i];
        }
    }

    /// <summary>Lays out two widgets on a list and a gadget, with the layout this model gives.</summary>
    private static (Image Image, ulong Head) Build(DataModel model, ulong baseAddress)
    {
        var image = new Image(model, baseAddress, 4096);
        var ptr = (ulong)model.PointerSize();
        ulong W(string member) => KernelTypes.OffsetOf<widget>(model, member);
        ulong G(string member) => KernelTypes.OffsetOf<gadget>(model, member);
        var head = baseAddress + 0x10;
        var w1 = baseAddress + 0x100;
        var w2 = baseAddress + 0x200;
        var g = baseAddress + 0x300;
        foreach (var (w, id, next, label) in new[] { (w1, 7UL, w2 + W("link"), "first"), (w2, 8UL, head, "second") })
        {
            image.Write(w + W("id"), id, 4);
            image.Write(w + W("size"), unchecked((ulong)-(long)id), ptr);
            image.Write(w + W("label"), label);
            image.Write(w + W("link"), next, ptr);
            image.Write(w + W("peer"), g, ptr);
            var bits = KernelTypes.Layout<widget>(model).Field("level");
            image.Write(w + W("on"), 1UL | (id << (int)(bits.BitOffset - W("on") * 8)), 4);
        }
        image.Write(head, w1 + W("link"), ptr);
        image.Write(g + G("serial"), 1234, 4);
        image.Write(g + G("mask"), 0xF0F0F0F0, ptr);
        image.Write(g + G("owner"), w2, ptr);
        image.Write(g + G("tag"), "gad");
        return (image, head);
    }

    /// <summary>The same code for both models.</summary>
    private static string Describe(IKernelMemory memory, ulong head)
    {
        var list = list_head.At(memory, head);
        var parts = new List<string>();
        foreach (var w in list.Entries<widget>(x => x.link))
        {
            var peer = w.peer.Value;
            parts.Add($"{w.id}:{w.size}:{w.label}:{w.on}:{w.level}:{peer.serial}:{peer.mask:x}:{peer.tag}:{peer.owner.Value.label}");
        }
        return string.Join(" ", parts);
    }

    [Theory]
    [InlineData(DataModel.ILP32, 0xc2000000UL)]
    [InlineData(DataModel.LP64, 0xffff888002000000UL)]
    public void ReadsCAndCSharpStructsFromEitherModel(DataModel model, ulong baseAddress)
    {
        var (image, head) = Build(model, baseAddress);
        Assert.Equal("7:-7:first:1:7:1234:f0f0f0f0:gad:second 8:-8:second:1:8:1234:f0f0f0f0:gad:second", Describe(image, head));
    }

    [Fact]
    public void LayoutsDifferBetweenModelsAsTheAbiSays()
    {
        Assert.Equal(36UL, KernelTypes.SizeOf<widget>(DataModel.ILP32));
        Assert.Equal(64UL, KernelTypes.SizeOf<widget>(DataModel.LP64));
        Assert.Equal(20UL, KernelTypes.SizeOf<gadget>(DataModel.ILP32));
        Assert.Equal(32UL, KernelTypes.SizeOf<gadget>(DataModel.LP64));
        Assert.Equal(8UL, KernelTypes.OffsetOf<gadget>(DataModel.LP64, "mask"));
    }
}

/// <summary>Reading a scalar or following a pointer allocates nothing.</summary>
public sealed class AllocationTests
{
    [Fact]
    public void FieldReadsDoNotAllocate()
    {
        var image = new PatternImage();
        var w = widget.At(image, 0x1000);
        long sum = 0;
        sum += w.id + w.size + w.level + w.peer.Value.serial + (long)w.peer.Value.mask;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            sum += w.id + w.size + w.level + w.peer.Value.serial + (long)w.peer.Value.mask + (long)w.link.next.Address;
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sum);
    }

    /// <summary>Every byte is 0x10, so every pointer is non-NULL.</summary>
    private sealed class PatternImage : IKernelMemory
    {
        public DataModel DataModel => DataModel.LP64;

        public bool TryReadVirtual(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            destination.Fill(0x10);
            failure = null;
            return true;
        }
    }
}

/// <summary>Lists from a damaged image end with an error, never a hang.</summary>
public sealed class ListTests
{
    private sealed class Words(DataModel model, Dictionary<ulong, ulong> words) : IKernelMemory
    {
        public DataModel DataModel => model;

        public bool TryReadVirtual(ulong address, Span<byte> destination, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? failure)
        {
            destination.Clear();
            if (words.TryGetValue(address, out var value))
            {
                for (var i = 0; i < destination.Length && i < 8; i++) destination[i] = (byte)(value >> (8 * i));
            }
            failure = null;
            return true;
        }
    }

    [Fact]
    public void ACycleThatMissesTheHeadIsReported()
    {
        var link = KernelTypes.OffsetOf<widget>(DataModel.LP64, "link");
        var mem = new Words(DataModel.LP64, new() { [0x100] = 0x200 + link, [0x200 + link] = 0x300 + link, [0x300 + link] = 0x200 + link });
        var e = Assert.Throws<KvmException>(() => list_head.At(mem, 0x100).Entries<widget>(w => w.link).Count());
        Assert.Contains("did not return to its head", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANullNextIsAReadError()
    {
        var mem = new Words(DataModel.ILP32, new() { [0x100] = 0x200 });
        Assert.Throws<KvmReadException>(() => list_head.At(mem, 0x100).Entries<widget>(w => w.link).Count());
    }

    [Fact]
    public void HashListsEndAtNull()
    {
        var mem = new Words(DataModel.LP64, new() { [0x100] = 0x1000, [0x1000] = 0x2000 });
        var nodes = hlist_head.At(mem, 0x100).Entries<hlist_node>(n => n).Select(n => n.Address).ToList();
        Assert.Equal(new ulong[] { 0x1000, 0x2000 }, nodes);
    }
}
