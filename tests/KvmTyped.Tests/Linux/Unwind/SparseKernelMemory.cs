using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Btf;
using KvmTyped.TestSupport;
using KvmTyped.Types;

namespace KvmTyped.Tests.Linux.Unwind;

/// <summary>Kernel memory for tests made of blocks at chosen addresses (stacks, code, tables); anything else is
/// unreadable, as an unmapped page is.</summary>
internal sealed class SparseKernelMemory(DataModel model) : IKernelMemory
{
    private readonly List<(ulong Start, byte[] Bytes)> _blocks = [];

    public DataModel DataModel { get; } = model;

    /// <summary>Adds a zeroed block.</summary>
    public SparseKernelMemory Map(ulong start, int length)
    {
        _blocks.Add((start, new byte[length]));
        return this;
    }

    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        foreach (var (start, bytes) in _blocks)
        {
            if (address >= start && address - start <= (ulong)bytes.Length && (ulong)destination.Length <= (ulong)bytes.Length - (address - start))
            {
                bytes.AsSpan((int)(address - start), destination.Length).CopyTo(destination);
                failure = null;
                return true;
            }
        }
        failure = $"0x{address:x} is not mapped";
        return false;
    }

    private Span<byte> At(ulong address, int length)
    {
        foreach (var (start, bytes) in _blocks)
        {
            if (address >= start && address - start + (ulong)length <= (ulong)bytes.Length)
                return bytes.AsSpan((int)(address - start), length);
        }
        throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is in no block");
    }

    public void U8(ulong at, byte v) => At(at, 1)[0] = v;

    public void U16(ulong at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(At(at, 2), v);

    public void U32(ulong at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(At(at, 4), v);

    public void U64(ulong at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(At(at, 8), v);

    public void Word(ulong at, ulong v)
    {
        if (DataModel == DataModel.LP64)
            U64(at, v);
        else
            U32(at, (uint)v);
    }

    public void Bytes(ulong at, ReadOnlySpan<byte> v) => v.CopyTo(At(at, v.Length));

    public void Text(ulong at, string s) => Bytes(at, [.. System.Text.Encoding.UTF8.GetBytes(s), 0]);
}

/// <summary>The fixture kernels' BTF: the layouts the unwinders and the module walk read through.</summary>
internal static class FixtureTypes
{
    private static readonly Lazy<BtfTypes> Amd64Lazy = new(() => BtfReader.Load(Fixtures.Get("amd64/vmlinux-6.1.0-56-amd64.gz"), null, 8));
    private static readonly Lazy<BtfTypes> I386Lazy = new(() => BtfReader.Load(Fixtures.Get("i386/vmlinux-6.1.0-50-686-pae.btf"), null, 4));
    private static readonly Lazy<BtfTypes> Arm64Lazy = new(() => BtfReader.Load(Fixtures.Get("arm64/vmlinux-6.1.0-50-arm64.btf"), null, 8));

    /// <summary>Debian's 6.1.0-56-amd64.</summary>
    public static BtfTypes Amd64 => Amd64Lazy.Value;

    /// <summary>Debian's 6.1.0-50-686-pae.</summary>
    public static BtfTypes I386 => I386Lazy.Value;

    /// <summary>Debian's 6.1.0-50-arm64.</summary>
    public static BtfTypes Arm64 => Arm64Lazy.Value;

    /// <summary><paramref name="memory"/> with its structs placed by <paramref name="types"/>.</summary>
    public static ViewMemory Placed(IKernelMemory memory, BtfTypes types) =>
        new(memory, new BtfRelocator(types, memory.DataModel, "test kernel"));
}
