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
        : this(structName, isUnion, fieldNames, null)
    {
    }

    /// <summary>Creates a request that also states each member's declared type, so a source can check it against
    /// the kernel's (as BPF CO-RE does).</summary>
    /// <param name="structName">The C tag.</param>
    /// <param name="isUnion">True for a union.</param>
    /// <param name="fieldNames">Member names in schema order.</param>
    /// <param name="fieldTypes">The declared type of each member, in the same order; null when unknown.</param>
    public KernelRelocationRequest(string structName, bool isUnion, string[] fieldNames, KernelFieldType[]? fieldTypes)
        : this(structName, isUnion, fieldNames, fieldTypes, null)
    {
    }

    /// <summary>Creates a request that also says which members are optional (declared <c>__kvmt_optional</c> or
    /// <c>[KernelOptional]</c>): a kernel whose member of that name has an incompatible type is taken not to have it,
    /// as libbpf passes over a candidate struct whose field does not match, instead of failing the whole struct.</summary>
    /// <param name="structName">The C tag.</param>
    /// <param name="isUnion">True for a union.</param>
    /// <param name="fieldNames">Member names in schema order.</param>
    /// <param name="fieldTypes">The declared type of each member, in the same order; null when unknown.</param>
    /// <param name="optional">Per member, whether only some kernels have it (as declared); null when none is.</param>
    public KernelRelocationRequest(string structName, bool isUnion, string[] fieldNames, KernelFieldType[]? fieldTypes, bool[]? optional)
    {
        ArgumentNullException.ThrowIfNull(structName);
        ArgumentNullException.ThrowIfNull(fieldNames);
        if (fieldTypes is not null && fieldTypes.Length != fieldNames.Length)
        {
            throw new ArgumentException($"a request for {structName} needs one type per member ({fieldNames.Length}), not {fieldTypes.Length}", nameof(fieldTypes));
        }
        if (optional is not null && optional.Length != fieldNames.Length)
        {
            throw new ArgumentException($"a request for {structName} needs one optional flag per member ({fieldNames.Length}), not {optional.Length}", nameof(optional));
        }
        StructName = structName;
        IsUnion = isUnion;
        FieldNames = fieldNames;
        FieldTypes = fieldTypes;
        Optional = optional;
    }

    /// <summary>Per member (same order as <see cref="FieldNames"/>), whether it is optional; null when none is.</summary>
    public IReadOnlyList<bool>? Optional { get; }

    /// <summary>Whether member <paramref name="index"/> is optional.</summary>
    public bool IsOptional(int index) => Optional is { } o && o[index];

    /// <summary>The last answer given for this request, and for which memory: views of one image are made in loops,
    /// so this spares the per-image table lookup. Weak, so it keeps no closed image alive.</summary>
    internal sealed class LastAnswer(IKernelMemory memory, KernelRelocation relocation)
    {
        public readonly WeakReference<IKernelMemory> Memory = new(memory);
        public readonly KernelRelocation Relocation = relocation;
    }

    internal volatile LastAnswer? Last;

    /// <summary>The declared type of each member (same order as <see cref="FieldNames"/>), or null when the request
    /// does not say.</summary>
    public IReadOnlyList<KernelFieldType>? FieldTypes { get; }

    /// <summary>The C tag.</summary>
    public string StructName { get; }

    /// <summary>True for a union.</summary>
    public bool IsUnion { get; }

    /// <summary>The members, in schema order; indexes into <see cref="KernelRelocation"/>.</summary>
    public IReadOnlyList<string> FieldNames { get; }
}

/// <summary>The kind of a member's declared type.</summary>
public enum KernelFieldKind
{
    /// <summary>An integer (char, short, int, long, long long; signed or not).</summary>
    Int,

    /// <summary>_Bool.</summary>
    Bool,

    /// <summary>float or double.</summary>
    Float,

    /// <summary>A pointer.</summary>
    Pointer,

    /// <summary>An array; <see cref="KernelFieldType.Element"/> describes its element.</summary>
    Array,

    /// <summary>A struct.</summary>
    Struct,

    /// <summary>A union.</summary>
    Union,

    /// <summary>An enum.</summary>
    Enum,
}

/// <summary>A member's declared type, as a relocation request states it: enough to check it against the kernel's type
/// the way BPF CO-RE does. Equatable by value.</summary>
/// <param name="Kind">What sort of type.</param>
/// <param name="Size32">Its size in bytes under ILP32 (0 when unknown or not meaningful, e.g. a struct or array).</param>
/// <param name="Size64">Its size in bytes under LP64.</param>
/// <param name="Signed">True for a signed integer or enum.</param>
/// <param name="Length">The element count of an array (0 for a flexible array).</param>
/// <param name="Name">The tag of a struct, union or enum; the pointee's tag for a pointer to one; else null.</param>
/// <param name="Element">The element type of an array, else null.</param>
/// <param name="BitWidth">The declared bitfield width, 0 when the member is not a bitfield.</param>
public sealed record KernelFieldType(KernelFieldKind Kind, int Size32, int Size64, bool Signed = false, long Length = 0, string? Name = null, KernelFieldType? Element = null, int BitWidth = 0)
{
    /// <summary>The size under <paramref name="model"/>.</summary>
    public int SizeIn(DataModel model) => model == DataModel.LP64 ? Size64 : Size32;

    /// <summary>C-like spelling under <paramref name="model"/>, for messages: "signed 4-byte int", "pointer to struct pid",
    /// "array[16] of signed 1-byte int".</summary>
    public string Describe(DataModel model) => BitWidth > 0 ? $"{Spell(model)} : {BitWidth}" : Spell(model);

    private string Spell(DataModel model) => Kind switch
    {
        KernelFieldKind.Int => $"{(Signed ? "signed" : "unsigned")} {SizeIn(model)}-byte int",
        KernelFieldKind.Bool => "_Bool",
        KernelFieldKind.Float => $"{SizeIn(model)}-byte float",
        KernelFieldKind.Pointer => Name is null ? "pointer" : $"pointer to {Name}",
        KernelFieldKind.Array => $"array[{Length}] of {Element?.Describe(model) ?? "?"}",
        KernelFieldKind.Struct => $"struct {Name}",
        KernelFieldKind.Union => $"union {Name}",
        _ => $"enum {Name} ({SizeIn(model)} bytes)",
    };
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
        : this(request, size, bitOffsets, bitSizes, null)
    {
    }

    /// <summary>Creates an answer to <paramref name="request"/> for a described image.</summary>
    /// <param name="request">What was asked.</param>
    /// <param name="size">sizeof the struct in this image.</param>
    /// <param name="bitOffsets">Per member, its bit offset, or -1 when this kernel lacks it.</param>
    /// <param name="bitSizes">Per member, its bitfield width (0 when not a bitfield).</param>
    /// <param name="image">The image, for messages (e.g. "kernel 6.1.0-13-amd64"); null when unknown.</param>
    public KernelRelocation(KernelRelocationRequest request, ulong size, long[] bitOffsets, int[] bitSizes, string? image)
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
        Image = image;
    }

    /// <summary>The image this answer is for, as messages name it (e.g. "kernel 6.1.0-13-amd64"), or null.</summary>
    public string? Image { get; }

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
        return bits >= 0 ? bits : throw Missing(index);
    }

    private KvmException Missing(int index) =>
        new($"this kernel's {(_request.IsUnion ? "union" : "struct")} {_request.StructName} has no member '{_request.FieldNames[index]}'{(Image is null ? "" : $" ({Image})")}");

    /// <summary>The byte offset of member <paramref name="index"/>.</summary>
    /// <exception cref="KvmException">The member does not exist in this kernel.</exception>
    public ulong ByteOffset(int index) => (ulong)(BitOffset(index) >> 3);

    /// <summary>The byte offset of the member called <paramref name="member"/>.</summary>
    /// <exception cref="KvmException">The member was not requested, or does not exist in this kernel.</exception>
    public ulong ByteOffset(string member)
    {
        for (var i = 0; i < _request.FieldNames.Count; i++)
        {
            if (_request.FieldNames[i] == member) return ByteOffset(i);
        }
        throw new KvmException($"{(_request.IsUnion ? "union" : "struct")} {_request.StructName} has no member '{member}' in its schema");
    }

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
        if (request.Last is { } last && last.Memory.TryGetTarget(out var lastMemory) && ReferenceEquals(lastMemory, memory))
            return last.Relocation;
        var relocation = Lookup(memory, request);
        request.Last = new KernelRelocationRequest.LastAnswer(memory, relocation);
        return relocation;
    }

    private static KernelRelocation Lookup(IKernelMemory memory, KernelRelocationRequest request)
    {
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
