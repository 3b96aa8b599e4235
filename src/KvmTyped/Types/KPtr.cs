using System.Globalization;

namespace KvmTyped.Types;

/// <summary>A typed kernel pointer (<c>T *</c>) that can be followed.</summary>
/// <typeparam name="T">The view type pointed to.</typeparam>
public readonly struct KPtr<T> : IEquatable<KPtr<T>>
    where T : struct, IKernelView<T>
{
    private readonly IKernelMemory _memory;

    /// <summary>A pointer to <paramref name="address"/> in <paramref name="memory"/>.</summary>
    public KPtr(IKernelMemory memory, ulong address)
    {
        _memory = memory;
        Address = address;
    }

    /// <summary>The pointer's value.</summary>
    public ulong Address { get; }

    /// <summary>True for NULL.</summary>
    public bool IsNull => Address == 0;

    /// <summary>The pointed-to object (*p).</summary>
    /// <exception cref="KvmReadException">The pointer is NULL.</exception>
    public T Value => IsNull ? throw new KvmReadException(0, $"NULL pointer to {T.TypeName} followed") : T.At(_memory, Address);

    /// <summary>p[index]: the element index objects after the pointed-to one.</summary>
    public T this[long index] => IsNull ? throw new KvmReadException(0, $"NULL pointer to {T.TypeName} indexed") : T.At(_memory, unchecked(Address + (ulong)index * T.SizeOf(_memory)));

    /// <inheritdoc/>
    public bool Equals(KPtr<T> other) => Address == other.Address && ReferenceEquals(_memory, other._memory);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is KPtr<T> other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Address.GetHashCode();

    /// <summary>Compares pointers.</summary>
    public static bool operator ==(KPtr<T> left, KPtr<T> right) => left.Equals(right);

    /// <summary>Compares pointers.</summary>
    public static bool operator !=(KPtr<T> left, KPtr<T> right) => !left.Equals(right);

    /// <summary>"(struct task_struct *)0xffff…".</summary>
    public override string ToString() => "(" + T.TypeName + " *)0x" + Address.ToString("x", CultureInfo.InvariantCulture);
}
