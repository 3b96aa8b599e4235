using System.Buffers.Binary;
using System.Text;

namespace KvmTyped.Types;

/// <summary>Little-endian reads of scalars through <see cref="IKernelMemory"/> into stack buffers: no allocation
/// except for strings. Generated views call these; a failed read throws <see cref="KvmReadException"/>.</summary>
public static class KernelReader
{
    /// <summary>Reads exactly destination.Length bytes or throws <see cref="KvmReadException"/>.</summary>
    public static void Read(IKernelMemory memory, ulong address, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (!memory.TryReadVirtual(address, destination, out var failure))
        {
            throw new KvmReadException(address, $"cannot read {destination.Length} bytes at 0x{address:x}: {failure}");
        }
    }

    /// <summary>Reads an unsigned integer of 1, 2, 4 or 8 bytes, zero-extended.</summary>
    public static ulong ReadUnsigned(IKernelMemory memory, ulong address, int size)
    {
        Span<byte> buffer = stackalloc byte[8];
        buffer.Clear();
        Read(memory, address, buffer[..size]);
        return BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    /// <summary>Reads a signed integer of 1, 2, 4 or 8 bytes, sign-extended.</summary>
    public static long ReadSigned(IKernelMemory memory, ulong address, int size)
    {
        var value = ReadUnsigned(memory, address, size);
        var shift = 64 - size * 8;
        return (long)(value << shift) >> shift;
    }

    /// <summary>Reads a little-endian 32-bit integer.</summary>
    public static int ReadInt32(IKernelMemory memory, ulong address) => (int)ReadUnsigned(memory, address, 4);

    /// <summary>Reads a little-endian 32-bit unsigned integer.</summary>
    public static uint ReadUInt32(IKernelMemory memory, ulong address) => (uint)ReadUnsigned(memory, address, 4);

    /// <summary>Reads a little-endian 64-bit integer.</summary>
    public static long ReadInt64(IKernelMemory memory, ulong address) => (long)ReadUnsigned(memory, address, 8);

    /// <summary>Reads an IEEE single.</summary>
    public static float ReadSingle(IKernelMemory memory, ulong address) => BitConverter.Int32BitsToSingle(ReadInt32(memory, address));

    /// <summary>Reads an IEEE double.</summary>
    public static double ReadDouble(IKernelMemory memory, ulong address) => BitConverter.Int64BitsToDouble(ReadInt64(memory, address));

    /// <summary>Reads a pointer (4 bytes under ILP32, 8 under LP64).</summary>
    public static ulong ReadPointer(IKernelMemory memory, ulong address, bool lp64) => ReadUnsigned(memory, address, lp64 ? 8 : 4);

    /// <summary>Reads a bitfield: <paramref name="bitWidth"/> bits starting <paramref name="bitOffset"/> bits after
    /// <paramref name="address"/> (bit 0 = lowest bit of the first byte, as on little-endian x86), sign-extended when
    /// <paramref name="signed"/>.</summary>
    public static ulong ReadBits(IKernelMemory memory, ulong address, long bitOffset, int bitWidth, bool signed)
    {
        if (bitWidth is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(bitWidth), bitWidth, "a bitfield is 1 to 64 bits wide");
        var first = address + (ulong)(bitOffset >> 3);
        var shift = (int)(bitOffset & 7);
        var bytes = (shift + bitWidth + 7) >> 3;
        Span<byte> buffer = stackalloc byte[16];
        buffer.Clear();
        Read(memory, first, buffer[..bytes]);
        var raw = BinaryPrimitives.ReadUInt128LittleEndian(buffer) >> shift;
        var value = (ulong)raw;
        if (bitWidth < 64)
        {
            value &= (1UL << bitWidth) - 1;
            if (signed && (value >> (bitWidth - 1) & 1) != 0) value |= ~0UL << bitWidth;
        }
        return value;
    }

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes (a C char array),
    /// decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public static string ReadCString(IKernelMemory memory, ulong address, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        Span<byte> stack = stackalloc byte[256];
        var buffer = maxLength <= stack.Length ? stack[..maxLength] : new byte[maxLength];
        Read(memory, address, buffer);
        var end = buffer.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? buffer : buffer[..end]);
    }
}
