using KvmTyped.Formats;

namespace KvmTyped.Types;

/// <summary>VMCOREINFO as a source of struct layouts: the <c>OFFSET(struct.member)</c> and <c>SIZE(struct)</c> entries
/// the kernel writes for the structs a dump reader needs most (the log buffer, utsname, page, list_head …), so those
/// views read on kernels without BTF.</summary>
/// <remarks>VMCOREINFO places members, not bitfields, and says nothing of types: a requested bitfield, or a member it
/// has no entry for, is reported absent, and no declared type is checked. A struct it gives no SIZE for has size 0.
/// Kernels 3.5-3.10 named struct printk_log "log": its entries stand in for printk_log's where those are missing.</remarks>
internal sealed class VmcoreInfoOffsets(VmcoreInfo info, string image) : IKernelTypeOffsets
{
    private static readonly Dictionary<string, string> Renamed = new(StringComparer.Ordinal) { ["printk_log"] = "log" };

    /// <summary>True when VMCOREINFO gives the struct's SIZE and every member the request names an OFFSET entry (none
    /// of them a bitfield): then it answers the request whole.</summary>
    public bool Covers(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = StructName(request);
        if (info.Size(name) is null)
            return false;
        for (var i = 0; i < request.FieldNames.Count; i++)
        {
            if (IsBitfield(request, i) || info.Offset($"{name}.{request.FieldNames[i]}") is null)
                return false;
        }
        return request.FieldNames.Count > 0;
    }

    /// <summary>True when VMCOREINFO has a SIZE or an OFFSET entry for the struct at all.</summary>
    public bool Knows(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = StructName(request);
        return info.Size(name) is not null || request.FieldNames.Any(f => info.Offset($"{name}.{f}") is not null);
    }

    /// <inheritdoc/>
    public KernelRelocation Relocate(KernelRelocationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var name = StructName(request);
        var offsets = new long[request.FieldNames.Count];
        var sizes = new int[offsets.Length];
        for (var i = 0; i < offsets.Length; i++)
        {
            var offset = IsBitfield(request, i) ? null : info.Offset($"{name}.{request.FieldNames[i]}");
            offsets[i] = offset is { } o && o <= (ulong)(long.MaxValue >> 3) ? (long)o * 8 : -1;
        }
        return new KernelRelocation(request, info.Size(name) ?? 0, offsets, sizes, image);
    }

    /// <summary>The name VMCOREINFO uses: without a ___flavor suffix, and the older name of a renamed struct when
    /// VMCOREINFO only has that.</summary>
    private string StructName(KernelRelocationRequest request)
    {
        var name = request.StructName;
        var flavor = name.IndexOf("___", StringComparison.Ordinal);
        if (flavor > 0)
            name = name[..flavor];
        return info.Size(name) is null && Renamed.TryGetValue(name, out var old) && info.Size(old) is not null ? old : name;
    }

    private static bool IsBitfield(KernelRelocationRequest request, int index) => request.FieldTypes?[index].BitWidth > 0;
}
