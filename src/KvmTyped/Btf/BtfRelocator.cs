using KvmTyped.Types;

namespace KvmTyped.Btf;

/// <summary>Relocates preserve_access_index structs against a kernel's BTF, as BPF CO-RE does: the struct is found
/// by name (a <c>___flavor</c> suffix ignored), each member by name (also through anonymous struct and union
/// members), and each member's declared type is checked against the kernel's.</summary>
/// <remarks>Compatibility follows CO-RE: integers (and enums) of the same size match whatever their signedness
/// (the declared signedness decides how the value is read); pointers match pointers; arrays need the same length
/// (a declared flexible array matches any) and compatible elements; structs and unions match their own kind with
/// the same name; a declared bitfield matches any integer or enum member and takes the kernel's width. A member the
/// kernel lacks is recorded as missing: <see cref="KernelRelocation.Has(int)"/> reports it, reading it throws. So is an
/// optional member (<see cref="KernelRelocationRequest.Optional"/>) whose type does not match: libbpf, too, passes over a
/// candidate whose field is incompatible.
/// Answers are cached per request. Thread-safe.</remarks>
internal sealed class BtfRelocator : IKernelTypeOffsets
{
    private readonly Dictionary<KernelRelocationRequest, KernelRelocation> _cache = new(ReferenceEqualityComparer.Instance);
    private readonly Lock _lock = new();

    /// <summary>Creates a relocator.</summary>
    /// <param name="types">The kernel's BTF.</param>
    /// <param name="dataModel">The kernel's data model: declared sizes of long and pointers depend on it.</param>
    /// <param name="image">How messages name the image, e.g. "kernel 6.1.0-13-amd64"; null: the BTF's source.</param>
    public BtfRelocator(BtfTypes types, DataModel dataModel, string? image = null)
    {
        ArgumentNullException.ThrowIfNull(types);
        Types = types;
        DataModel = dataModel;
        Image = image ?? $"BTF {types.SourceName}";
    }

    /// <summary>The kernel's BTF.</summary>
    public BtfTypes Types { get; }

    /// <summary>The kernel's data model.</summary>
    public DataModel DataModel { get; }

    /// <summary>How messages name the image.</summary>
    public string Image { get; }

    /// <summary>The name CO-RE matches: everything before a <c>___</c> flavor suffix.</summary>
    public static string EssentialName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int at = name.IndexOf("___", StringComparison.Ordinal);
        return at > 0 ? name[..at] : name;
    }

    /// <inheritdoc/>
    /// <exception cref="KvmException">The kernel has no such struct, or a member's declared type does not match
    /// the kernel's; the message names the struct, the member, both types and the image.</exception>
    public KernelRelocation Relocate(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_lock)
        {
            if (_cache.TryGetValue(request, out var known))
                return known;
        }
        var relocation = Compute(request);
        lock (_lock)
        {
            _cache[request] = relocation;
        }
        return relocation;
    }

    private KernelRelocation Compute(KernelRelocationRequest request)
    {
        string kindWord = request.IsUnion ? "union" : "struct";
        string name = EssentialName(request.StructName);
        if (!Types.TryFind(name, request.IsUnion ? BtfKind.Union : BtfKind.Struct, out int id))
        {
            throw new KvmException($"{kindWord} {request.StructName}: {Image} has no {kindWord} {name} in its BTF ({Types.SourceName})");
        }
        var fields = Types.GetFlattenedMembers(id);
        int n = request.FieldNames.Count;
        // A struct's first member of each name: a view asks for a few of a kernel struct's hundreds of members, found
        // by comparing names; a table of every name pays when many are asked for.
        Dictionary<string, BtfField>? members = null;
        if (n > DirectSearchMembers)
        {
            members = new Dictionary<string, BtfField>(fields.Count, StringComparer.Ordinal);
            foreach (var f in fields)
                members.TryAdd(f.Name, f);
        }
        var bitOffsets = new long[n];
        var bitSizes = new int[n];
        for (int i = 0; i < n; i++)
        {
            string member = request.FieldNames[i];
            BtfField? found = members is null ? BtfTypes.FirstNamed(fields, member) : members.TryGetValue(member, out var f) ? f : null;
            if (found is not { } field)
            {
                bitOffsets[i] = -1;
                continue;
            }
            var declared = request.FieldTypes?[i];
            if (declared is not null && !Compatible(declared, field.TypeId, field.IsBitfield, 0, out string why))
            {
                // An optional member is another kernel's variant: this kernel has something else of that name.
                if (request.IsOptional(i))
                {
                    bitOffsets[i] = -1;
                    continue;
                }
                throw Mismatch(request, kindWord, member, declared, field, why);
            }
            int bitSize = field.BitSize;
            if (declared is { BitWidth: > 0 } && !field.IsBitfield)
            {
                // A bitfield declared over a plain kernel integer reads the whole integer: the kernel's layout wins.
                bitSize = field.Size > 0 ? (int)Math.Min(field.Size * 8, int.MaxValue) : bitSize;
            }
            if (bitSize > MaxBitfieldWidth)
            {
                string what = declared is null ? "" : $"declared {declared.Describe(DataModel)}, but ";
                throw new KvmException($"{kindWord} {request.StructName}, member '{member}': {what}{Image} has {KernelSpelling(field, member)} " +
                    $"({DescribeKernel(field.TypeId, 0)}{(field.IsBitfield ? $" : {field.BitSize}" : "")}): " +
                    $"{bitSize} bits is wider than the {MaxBitfieldWidth} a bitfield read returns");
            }
            bitOffsets[i] = field.BitOffset;
            bitSizes[i] = bitSize;
        }
        return new KernelRelocation(request, checked((ulong)Types.SizeOf(id)), bitOffsets, bitSizes, Image);
    }

    /// <summary>Up to this many members asked for, each is found by comparing names (see <see cref="Compute"/>).</summary>
    private const int DirectSearchMembers = 16;

    /// <summary>Widest bitfield a read returns (<see cref="KernelReader.ReadBits"/>).</summary>
    private const int MaxBitfieldWidth = 64;

    private KvmException Mismatch(KernelRelocationRequest request, string kindWord, string member, KernelFieldType declared, BtfField field, string why) =>
        new($"{kindWord} {request.StructName}, member '{member}': declared {declared.Describe(DataModel)}, " +
            $"but {Image} has {KernelSpelling(field, member)} " +
            $"({DescribeKernel(field.TypeId, 0)}{(field.IsBitfield ? $" : {field.BitSize}" : "")}): {why}");

    /// <summary>The kernel member as C declares it; a type too tangled to spell is described instead.</summary>
    private string KernelSpelling(BtfField field, string member)
    {
        string bits = field.IsBitfield ? $" : {field.BitSize}" : "";
        try
        {
            return Types.FormatDeclaration(field.TypeId, member).Trim() + bits;
        }
        catch (KvmFormatException e)
        {
            return $"{member} of type {field.TypeId} ({e.Message}){bits}";
        }
    }

    private bool Compatible(KernelFieldType declared, int kernelType, bool kernelBitfield, int depth, out string why)
    {
        int r = Types.Resolve(kernelType);
        var kind = Types.KindOf(r);
        if (declared.BitWidth > 0)
        {
            why = "a bitfield needs an integer or enum member";
            return kind is BtfKind.Int or BtfKind.Enum or BtfKind.Enum64;
        }
        if (kernelBitfield)
        {
            why = "the kernel's member is a bitfield; declare it as one";
            return false;
        }
        int size = declared.SizeIn(DataModel);
        switch (declared.Kind)
        {
            case KernelFieldKind.Int:
            case KernelFieldKind.Enum:
                if (kind is not (BtfKind.Int or BtfKind.Enum or BtfKind.Enum64))
                {
                    why = "an integer or enum needs an integer or enum";
                    return false;
                }
                why = "the sizes differ";
                return Types.SizeOf(r) == size;
            case KernelFieldKind.Bool:
                why = "_Bool needs a 1-byte integer";
                return kind == BtfKind.Int && Types.SizeOf(r) == 1;
            case KernelFieldKind.Float:
                why = "a float needs a float of the same size";
                return kind == BtfKind.Float && Types.SizeOf(r) == size;
            case KernelFieldKind.Pointer:
                why = "a pointer needs a pointer";
                return kind == BtfKind.Ptr;
            case KernelFieldKind.Struct:
            case KernelFieldKind.Union:
            {
                var want = declared.Kind == KernelFieldKind.Struct ? BtfKind.Struct : BtfKind.Union;
                if (kind != want)
                {
                    why = $"a {(want == BtfKind.Struct ? "struct" : "union")} needs a {(want == BtfKind.Struct ? "struct" : "union")}";
                    return false;
                }
                string kernelName = Types.NameOf(r);
                why = "the tags differ";
                return declared.Name is null || kernelName.Length == 0 || EssentialName(declared.Name) == EssentialName(kernelName);
            }
            case KernelFieldKind.Array:
            {
                if (kind != BtfKind.Array)
                {
                    why = "an array needs an array";
                    return false;
                }
                var a = Types.GetArray(r);
                if (declared.Length != 0 && a.Count != declared.Length)
                {
                    why = $"the lengths differ ({declared.Length} declared, {a.Count} in the kernel)";
                    return false;
                }
                if (declared.Element is null)
                {
                    why = "";
                    return true;
                }
                if (depth >= BtfTypes.MaxChainDepth)
                {
                    why = "arrays nest too deeply";
                    return false;
                }
                if (Compatible(declared.Element, a.ElementType, false, depth + 1, out string inner))
                {
                    why = "";
                    return true;
                }
                why = $"elements: {inner}";
                return false;
            }
            default:
                why = $"unknown declared kind {declared.Kind}";
                return false;
        }
    }

    /// <summary>The kernel type in the words <see cref="KernelFieldType.Describe"/> uses.</summary>
    internal string DescribeKernel(int typeId, int depth)
    {
        int r = Types.Resolve(typeId);
        var t = Types.Get(r);
        string name = Types.NameOf(r);
        switch (t.Kind)
        {
            case BtfKind.Int:
                var e = Types.GetInt(r);
                return e.IsBool ? "_Bool" : $"{(e.IsSigned ? "signed" : "unsigned")} {t.SizeOrType}-byte int";
            case BtfKind.Float:
                return $"{t.SizeOrType}-byte float";
            case BtfKind.Ptr:
                return "pointer";
            case BtfKind.Array:
                var a = Types.GetArray(r);
                return depth >= BtfTypes.MaxChainDepth ? $"array[{a.Count}]" : $"array[{a.Count}] of {DescribeKernel(a.ElementType, depth + 1)}";
            case BtfKind.Struct:
                return $"struct {(name.Length == 0 ? "(anonymous)" : name)}";
            case BtfKind.Union:
                return $"union {(name.Length == 0 ? "(anonymous)" : name)}";
            case BtfKind.Enum or BtfKind.Enum64:
                return $"enum {(name.Length == 0 ? "(anonymous)" : name)} ({t.SizeOrType} bytes)";
            default:
                return BtfTypes.KindWord(t.Kind);
        }
    }
}
