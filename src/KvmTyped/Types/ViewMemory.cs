using System.Diagnostics.CodeAnalysis;

namespace KvmTyped.Types;

/// <summary>Kernel memory for views, over another: ranges already read in bulk are served from their buffers (so a
/// walk over thousands of records reads the kernel once), everything else from the memory beneath; struct layouts
/// come from a given source, or from the memory beneath.</summary>
internal sealed class ViewMemory : IKernelMemory, IKernelTypeOffsets
{
    private readonly IKernelMemory _inner;
    private readonly IKernelTypeOffsets? _offsets;
    private readonly List<(ulong Start, byte[] Bytes)> _ranges = [];

    /// <summary>Views over <paramref name="inner"/>, placed by <paramref name="offsets"/> (null: by the memory beneath).</summary>
    public ViewMemory(IKernelMemory inner, IKernelTypeOffsets? offsets = null)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _offsets = offsets ?? inner as IKernelTypeOffsets;
    }

    /// <inheritdoc/>
    public DataModel DataModel => _inner.DataModel;

    /// <summary>Serves [<paramref name="start"/>, start + bytes.Length) from <paramref name="bytes"/> from now on.</summary>
    public void Add(ulong start, byte[] bytes) => _ranges.Add((start, bytes));

    /// <inheritdoc/>
    public bool TryReadVirtual(ulong address, Span<byte> destination, [NotNullWhen(false)] out string? failure)
    {
        foreach (var (start, bytes) in _ranges)
        {
            if (address >= start && address - start <= (ulong)bytes.Length && (ulong)destination.Length <= (ulong)bytes.Length - (address - start))
            {
                bytes.AsSpan((int)(address - start), destination.Length).CopyTo(destination);
                failure = null;
                return true;
            }
        }
        return _inner.TryReadVirtual(address, destination, out failure);
    }

    /// <inheritdoc/>
    public KernelRelocation Relocate(KernelRelocationRequest request) =>
        _offsets is { } o ? o.Relocate(request)
        : throw new KvmException($"struct {request.StructName} is preserve_access_index: its offsets come from the kernel's types, and this memory supplies none");
}
