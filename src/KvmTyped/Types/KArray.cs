using System.Runtime.CompilerServices;

namespace KvmTyped.Types;

/// <summary>A C array of scalars in kernel memory, indexed with bounds checks. Multi-dimensional arrays are
/// flattened in row-major order. A flexible array member has no known bound (<see cref="Length"/> is -1).</summary>
/// <typeparam name="T">The C# type of an element: an integer, bool, float, double or enum.</typeparam>
public readonly struct KArray<T>
    where T : unmanaged
{
    private readonly IKernelMemory _memory;
    private readonly int _elementSize;
    private readonly bool _signed;

    /// <summary>An array of <paramref name="length"/> elements of <paramref name="elementSize"/> bytes.</summary>
    public KArray(IKernelMemory memory, ulong address, long length, int elementSize, bool signed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(elementSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementSize, 8);
        _memory = memory;
        Address = address;
        Length = length;
        _elementSize = elementSize;
        _signed = signed;
    }

    /// <summary>The address of element 0.</summary>
    public ulong Address { get; }

    /// <summary>The number of elements, or -1 for a flexible array member.</summary>
    public long Length { get; }

    /// <summary>Element <paramref name="index"/>.</summary>
    /// <exception cref="IndexOutOfRangeException">Outside 0..Length-1.</exception>
    public T this[long index]
    {
        get
        {
            if (index < 0 || (Length >= 0 && index >= Length)) throw new IndexOutOfRangeException($"index {index} is outside the array of {Length} elements at 0x{Address:x}");
            var address = Address + (ulong)index * (ulong)_elementSize;
            var value = _signed ? (ulong)KernelReader.ReadSigned(_memory, address, _elementSize) : KernelReader.ReadUnsigned(_memory, address, _elementSize);
            if (typeof(T) == typeof(bool))
            {
                var b = value != 0;
                return Unsafe.As<bool, T>(ref b);
            }
            if (typeof(T) == typeof(float))
            {
                var f = BitConverter.Int32BitsToSingle((int)value);
                return Unsafe.As<float, T>(ref f);
            }
            if (typeof(T) == typeof(double))
            {
                var d = BitConverter.Int64BitsToDouble((long)value);
                return Unsafe.As<double, T>(ref d);
            }
            return BitConverter.IsLittleEndian
                ? Unsafe.As<ulong, T>(ref value)
                : throw new PlatformNotSupportedException("kernel arrays are read on little-endian hosts only");
        }
    }
}

/// <summary>A C array of structs or unions in kernel memory, indexed with bounds checks (flattened when
/// multi-dimensional; Length -1 for a flexible array member).</summary>
/// <typeparam name="T">The view type of an element.</typeparam>
public readonly struct KViewArray<T>
    where T : struct, IKernelView<T>
{
    private readonly IKernelMemory _memory;

    /// <summary>An array of <paramref name="length"/> elements at <paramref name="address"/>.</summary>
    public KViewArray(IKernelMemory memory, ulong address, long length)
    {
        _memory = memory;
        Address = address;
        Length = length;
    }

    /// <summary>The address of element 0.</summary>
    public ulong Address { get; }

    /// <summary>The number of elements, or -1 for a flexible array member.</summary>
    public long Length { get; }

    /// <summary>Element <paramref name="index"/>.</summary>
    /// <exception cref="IndexOutOfRangeException">Outside 0..Length-1.</exception>
    public T this[long index] => index < 0 || (Length >= 0 && index >= Length)
        ? throw new IndexOutOfRangeException($"index {index} is outside the array of {Length} {T.TypeName} at 0x{Address:x}")
        : T.At(_memory, Address + (ulong)index * T.SizeOf(_memory));
}
