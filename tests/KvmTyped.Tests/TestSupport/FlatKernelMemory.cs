using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using KvmTyped.Types;

namespace KvmTyped.Tests.TestSupport;

/// <summary>Kernel memory for tests: one zeroed block at <see cref="Base"/>; anything outside it is unreadable.</summary>
internal sealed class FlatKernelMemory(DataModel model, ulong @base, int length) : IKernelMemory
{
    public byte[] Bytes { get; } = new byte[length];

    public ulong Base { get; } = @base;

    public DataModel DataModel { get; } = model;

    public int Reads { get; private set; }

    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        Reads++;
        if (address < Base || address - Base + (ulong)destination.Length > (ulong)Bytes.Length)
        {
            failure = $"cannot translate 0x{address:x}: not mapped";
            return false;
        }
        Bytes.AsSpan((int)(address - Base), destination.Length).CopyTo(destination);
        failure = null;
        return true;
    }

    public void U8(ulong at, byte v) => Bytes[(int)(at - Base)] = v;

    public void U16(ulong at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Bytes.AsSpan((int)(at - Base)), v);

    public void U32(ulong at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan((int)(at - Base)), v);

    public void U64(ulong at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan((int)(at - Base)), v);

    public void Ptr(ulong at, ulong v)
    {
        if (DataModel == DataModel.LP64)
            U64(at, v);
        else
            U32(at, (uint)v);
    }

    public void Text(ulong at, string s) => System.Text.Encoding.UTF8.GetBytes(s).CopyTo(Bytes.AsSpan((int)(at - Base)));
}
