using System.Runtime.CompilerServices;

namespace KvmTyped.Types;

/// <summary>What a generated preserve_access_index view asks an image for: the members it reads, by name.
/// Generated code keeps one instance per type, so sources may cache answers by reference.</summary>
public sealed class KernelRelocationRequest
{
    /// <summary>Creates a request.</summary>
    /// <param name="structName">The C tag.</param>
    /// <param name="isUnion">True for a union.</param>
    /// <param name="fieldNames">Member names in schema order; members of anonymous structs/unions appear by
    /// their own names, as C lets code reach them.</param>
    public KernelRelocationRequest(string structName, bool isUnion, string[] fieldNames)
    {
        StructName = structName;
        IsUnion = isUnion;
        FieldNames = fieldNames;
    }

    /// <summary>The C tag.</summary>
    public string StructName { get; }

    /// <summary>True for a union.</summary>
    public bool IsUnion { get; }

    /// <summary>The members, in schema order; indexes into <see cref="KernelRelocation"/>.</summary>
    public IReadOnlyList<string> FieldNames { get; }
}

/// <summary>The answer for one image: the struct's size and, per requested member, its bit offset and bitfield
/// width (0 when not a bitfield), or -1 when this kernel's struct has no such member.</summary>
public sealed class KernelRelocation
{
    private readonly long[] _bitOffsets;
    private readonly int[] _bitSizes;
    private readonly KernelRelocationRequest _request;

    /// <summary>Creates an answer to <paramref name="request"/>.</summary>
    public KernelRelocation(KernelRelocationRequest request, ulong size, long[] bitOffsets, int[] bitSizes)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(bitOffsets);
        ArgumentNullException.ThrowIfNull(bitSizes);
        if (bitOffsets.Length != request.FieldNames.Count || bitSizes.Length != request.FieldNames.Count)
        {
            throw new ArgumentException($"a relocation of {request.StructName} needs one entry per requested member ({request.FieldNames.Count})");
        }
        _request = request;
        Size = size;
        _bitOffsets = bitOffsets;
        _bitSizes = bitSizes;
    }

    /// <summary>sizeof the struct in this image.</summary>
    public ulong Size { get; }

    /// <summary>True when member <paramref name="index"/> exists in this image.</summary>
    public bool Has(int index) => _bitOffsets[index] >= 0;

    /// <summary>True when the member called <paramref name="member"/> was requested and exists in this image.</summary>
    public bool Has(string member)
    {
        for (var i = 0; i < _request.FieldNames.Count; i++)
        {
            if (_request.FieldNames[i] == member) return _bitOffsets[i] >= 0;
        }
        return false;
    }

    /// <summary>The bit offset of member <paramref name="index"/>.</summary>
    /// <exception cref="KvmException">The member does not exist in this kernel.</exception>
    public long BitOffset(int index)
    {
        var bits = _bitOffsets[index];
        return bits >= 0 ? bits : throw new KvmException($"this kernel's {(_request.IsUnion ? "union" : "struct")} {_request.StructName} has no member '{_request.FieldNames[index]}'");
    }

    /// <summary>The byte offset of member <paramref name="index"/>.</summary>
    /// <exception cref="KvmException">The member does not exist in this kernel.</exception>
    public ulong ByteOffset(int index) => (ulong)(BitOffset(index) >> 3);

    /// <summary>The bitfield width of member <paramref name="index"/>, 0 when it is not a bitfield.</summary>
    public int BitSize(int index) => _bitSizes[index];
}

/// <summary>Supplies the layouts of preserve_access_index structs for one image (from its BTF, or a table).
/// An <see cref="IKernelMemory"/> that also implements this interface can back relocated views.</summary>
public interface IKernelTypeOffsets
{
    /// <summary>Resolves a request against this image's types.</summary>
    /// <exception cref="KvmException">The image does not know the struct.</exception>
    KernelRelocation Relocate(KernelRelocationRequest request);
}

/// <summary>How generated views find relocations: the memory itself must implement <see cref="IKernelTypeOffsets"/>;
/// answers are cached per memory and request, so creating a view costs one lookup.</summary>
public static class KernelRelocations
{
    private static readonly ConditionalWeakTable<IKernelMemory, Dictionary<KernelRelocationRequest, KernelRelocation>> Cache = new();

    /// <summary>The relocation of <paramref name="request"/> for the image <paramref name="memory"/> reads.</summary>
    /// <exception cref="KvmException">The memory has no type information.</exception>
    public static KernelRelocation Get(IKernelMemory memory, KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        var perImage = Cache.GetValue(memory, static _ => new Dictionary<KernelRelocationRequest, KernelRelocation>(ReferenceEqualityComparer.Instance));
        lock (perImage)
        {
            if (perImage.TryGetValue(request, out var known)) return known;
        }
        if (memory is not IKernelTypeOffsets offsets)
        {
            throw new KvmException($"struct {request.StructName} is preserve_access_index: its offsets come from the kernel's BTF, and this memory ({memory.GetType().Name}) supplies none");
        }
        var relocation = offsets.Relocate(request);
        lock (perImage)
        {
            perImage[request] = relocation;
        }
        return relocation;
    }
}

/// <summary>A hand-made table of struct layouts: an <see cref="IKernelTypeOffsets"/> for tests, or for kernels whose
/// offsets are known from elsewhere (pahole output, a vendor's headers).</summary>
public sealed class KernelTypeOffsetTable : IKernelTypeOffsets
{
    private readonly Dictionary<string, (ulong Size, Dictionary<string, (long BitOffset, int BitSize)> Fields)> _structs = new(StringComparer.Ordinal);

    /// <summary>Records a struct's size.</summary>
    public KernelTypeOffsetTable Struct(string name, ulong size)
    {
        _structs[name] = (size, new Dictionary<string, (long, int)>(StringComparer.Ordinal));
        return this;
    }

    /// <summary>Records a member at a byte offset.</summary>
    public KernelTypeOffsetTable Field(string structName, string member, ulong byteOffset) => Bitfield(structName, member, checked((long)byteOffset * 8), 0);

    /// <summary>Records a bitfield at a bit offset with a width.</summary>
    public KernelTypeOffsetTable Bitfield(string structName, string member, long bitOffset, int bitSize)
    {
        if (!_structs.TryGetValue(structName, out var s)) throw new KvmException($"struct {structName} is not in the table: add it with Struct() first");
        s.Fields[member] = (bitOffset, bitSize);
        return this;
    }

    /// <inheritdoc/>
    public KernelRelocation Relocate(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_structs.TryGetValue(request.StructName, out var s)) throw new KvmException($"no layout of struct {request.StructName} is known");
        var offsets = new long[request.FieldNames.Count];
        var sizes = new int[offsets.Length];
        for (var i = 0; i < offsets.Length; i++)
        {
            (offsets[i], sizes[i]) = s.Fields.TryGetValue(request.FieldNames[i], out var f) ? f : (-1, 0);
        }
        return new KernelRelocation(request, s.Size, offsets, sizes);
    }
}
